// Package recordbomb builds "decompression bombs" for tests: record batches
// of a few KiB whose compressed body inflates to as much as asked, to check
// that readers of outside batches bound what they decompress.
package recordbomb

import (
	"encoding/binary"
	"hash/crc32"
)

// zstdBlock is the largest zstd block, what one RLE block of Zstd holds.
const zstdBlock = 128 << 10

// Zstd returns a zstd frame of four bytes per 128 KiB that inflates to n
// zero bytes (n rounded up to a multiple of 128 KiB): RLE blocks, and no
// content size in the frame header, so a decoder learns the size only by
// decoding.
func Zstd(n int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3} // magic, no content size, 128 KiB window
	for left := n; left > 0; left -= zstdBlock {
		hdr := uint32(zstdBlock)<<3 | 1<<1 // an RLE block
		if left <= zstdBlock {
			hdr |= 1 // the last
		}
		b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
	}
	return b
}

// Batch returns a magic-2 record batch at baseOffset announcing one record
// (timestamp 10) whose zstd body (Zstd) inflates to n zero bytes; its CRC
// is valid, so the log takes it as any other batch.
func Batch(baseOffset int64, n int) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(baseOffset))
	b = binary.BigEndian.AppendUint32(b, 0) // length, set below
	b = binary.BigEndian.AppendUint32(b, 0) // partition leader epoch
	b = append(b, 2)                        // magic
	b = binary.BigEndian.AppendUint32(b, 0) // crc, set below
	b = binary.BigEndian.AppendUint16(b, 4) // attributes: zstd
	b = binary.BigEndian.AppendUint32(b, 0) // last offset delta
	b = binary.BigEndian.AppendUint64(b, 10)
	b = binary.BigEndian.AppendUint64(b, 10)
	b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // producer id -1
	b = binary.BigEndian.AppendUint16(b, ^uint16(0)) // producer epoch -1
	b = binary.BigEndian.AppendUint32(b, ^uint32(0)) // base sequence -1
	b = binary.BigEndian.AppendUint32(b, 1)          // records
	b = append(b, Zstd(n)...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
