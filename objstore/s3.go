package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Store is a Store on an S3-compatible service.
type s3Store struct {
	core   *minio.Core
	loc    location
	name   string // for messages
	secure bool
}

// Open returns the Store that cfg names. It does not contact the service:
// use Check for that.
func Open(cfg Config) (Store, error) {
	loc, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	host, secure, custom, err := cfg.endpoint()
	if err != nil {
		return nil, err
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{Filename: cfg.CredentialsFile, Profile: cfg.Profile},
			&credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupAuto
	if custom {
		lookup = minio.BucketLookupPath
	}
	core, err := minio.NewCore(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       cfg.region(),
		BucketLookup: lookup,
		MaxRetries:   3,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", cfg.URL, err)
	}
	name := "s3://" + loc.bucket + "/" + loc.prefix
	if custom {
		name += " at " + host
	}
	return &s3Store{core: core, loc: loc, name: name, secure: secure}, nil
}

// Check reports whether s can be reached and its bucket exists; for Stores
// that are not S3 it returns nil.
func Check(ctx context.Context, s Store) error {
	ss, ok := s.(*s3Store)
	if !ok {
		return nil
	}
	ok, err := ss.core.BucketExists(ctx, ss.loc.bucket)
	if err != nil {
		return fmt.Errorf("object store %s: %w (is the endpoint right and reachable, and are the credentials valid?)", ss.name, err)
	}
	if !ok {
		return fmt.Errorf("object store %s: bucket %q does not exist (create it first)", ss.name, ss.loc.bucket)
	}
	return nil
}

func (s *s3Store) String() string { return s.name }

func (s *s3Store) key(k string) string { return s.loc.prefix + k }

func (s *s3Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	r := minio.ToErrorResponse(err)
	if r.Code == minio.NoSuchKey || r.StatusCode == http.StatusNotFound && r.Code != minio.NoSuchBucket {
		return fmt.Errorf("%s %s%s: %w", op, s.name, key, ErrNotExist)
	}
	return fmt.Errorf("%s %s%s: %w", op, s.name, key, err)
}

func (s *s3Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	// Over plain HTTP minio-go would sign the payload (a SHA-256 of every
	// byte, chunk by chunk); over HTTPS it sends it unsigned and TLS
	// protects it. Unsigned here too: the callers keep a CRC-32C of every
	// object (tier manifests, checkpoint manifests) and check it on read,
	// and the hash cost as much CPU as the upload itself. It also keeps an
	// empty body's Content-Length: 0, which the streaming signature
	// leaves out.
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true}
	_, err := s.core.Client.PutObject(ctx, s.loc.bucket, s.key(key), r, size, opts)
	return s.wrap("put", key, err)
}

func (s *s3Store) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("get %s%s: negative offset %d", s.name, key, off)
	}
	if n == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	switch {
	case n > 0:
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, fmt.Errorf("get %s%s: %w", s.name, key, err)
		}
	case off > 0:
		if err := opts.SetRange(off, 0); err != nil {
			return nil, fmt.Errorf("get %s%s: %w", s.name, key, err)
		}
	}
	rc, _, _, err := s.core.GetObject(ctx, s.loc.bucket, s.key(key), opts)
	if err != nil {
		if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			// Reading at or past the end gives nothing, as a file does.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.wrap("get", key, err)
	}
	return rc, nil
}

func (s *s3Store) Stat(ctx context.Context, key string) (Info, error) {
	oi, err := s.core.Client.StatObject(ctx, s.loc.bucket, s.key(key), minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.wrap("stat", key, err)
	}
	return Info{Key: key, Size: oi.Size, Modified: oi.LastModified}, nil
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]Info, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []Info
	for oi := range s.core.Client.ListObjects(ctx, s.loc.bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if oi.Err != nil {
			return nil, s.wrap("list", prefix, oi.Err)
		}
		out = append(out, Info{Key: strings.TrimPrefix(oi.Key, s.loc.prefix), Size: oi.Size, Modified: oi.LastModified})
	}
	return out, nil
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	err := s.core.Client.RemoveObject(ctx, s.loc.bucket, s.key(key), minio.RemoveObjectOptions{})
	if err != nil && errors.Is(s.wrap("delete", key, err), ErrNotExist) {
		return nil
	}
	return s.wrap("delete", key, err)
}
