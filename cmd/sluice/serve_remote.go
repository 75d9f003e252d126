package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/tier"
)

// remoteFlags configure the remote tier of `sluice serve` (tiered storage
// of topics with remote.storage.enable; docs/log.md).
type remoteFlags struct {
	url, endpoint, region, credsFile string
	cacheDir                         string
	cacheBytes, chunkBytes           byteSize
	uploadInterval                   time.Duration
}

func (r *remoteFlags) register(c *cli, fs *flag.FlagSet) {
	fs.StringVar(&r.url, "remote-storage", envOr(c, "SLUICE_REMOTE_STORAGE", ""), "s3://BUCKET/PREFIX: keep the closed segments of topics with remote.storage.enable in this S3-compatible store (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --remote-credentials-file) (env SLUICE_REMOTE_STORAGE)")
	fs.StringVar(&r.endpoint, "remote-endpoint", "", "the store's URL, http(s)://HOST:PORT, for stores other than AWS S3 (MinIO, SeaweedFS, Ceph, R2); default $AWS_ENDPOINT_URL")
	fs.StringVar(&r.region, "remote-region", "", "the store's region (default $AWS_REGION or us-east-1)")
	fs.StringVar(&r.credsFile, "remote-credentials-file", "", "AWS shared credentials file (default $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials), when the environment has no keys")
	fs.StringVar(&r.cacheDir, "remote-cache-dir", "", "directory of the cache of remote segment chunks (default DATA-DIR/tier-cache; its chunk files of a previous run are removed at start)")
	r.cacheBytes, r.chunkBytes = 256<<20, 1<<20
	sizeVar(fs, &r.cacheBytes, "remote-cache-bytes", "bound of the remote segment chunk cache, like 256MiB")
	sizeVar(fs, &r.chunkBytes, "remote-chunk-bytes", "size of one ranged read of a remote segment (and of a cache entry), like 1MiB")
	fs.DurationVar(&r.uploadInterval, "remote-upload-interval", 10*time.Second, "how often the uploader looks for segments to upload and applies remote retention, besides segment rolls")
}

// start opens the store and the tier when --remote-storage is given; the
// returned function stops it.
func (r *remoteFlags) start(ctx context.Context, l *logstore.Log, logger *slog.Logger, reg prometheus.Registerer) (func(), error) {
	if r.url == "" {
		for _, name := range l.Topics() {
			if t, err := l.Topic(name); err == nil && t.Config().RemoteStorage {
				logger.Warn("topic has remote.storage.enable but the server has no --remote-storage: its remote segments cannot be read and nothing is deleted locally", "topic", name)
			}
		}
		return func() {}, nil
	}
	if !objstore.IsURL(r.url) {
		return nil, usagef("--remote-storage must be s3://BUCKET[/PREFIX], got %q", r.url)
	}
	if r.cacheBytes < 1<<20 || r.chunkBytes < 4<<10 || r.chunkBytes > 64<<20 || r.uploadInterval <= 0 {
		return nil, usagef("--remote-cache-bytes must be at least 1 MiB, --remote-chunk-bytes 4 KiB to 64 MiB, --remote-upload-interval positive")
	}
	store, err := objstore.Open(objstore.Config{URL: r.url, Endpoint: r.endpoint, Region: r.region, CredentialsFile: r.credsFile})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = objstore.Check(cctx, store)
	cancel()
	if err != nil {
		// Not fatal: the tier retries and deletes nothing locally meanwhile.
		logger.Warn("remote storage not reachable at start; uploads will retry", "store", store.String(), "err", err)
	}
	t, err := tier.Open(tier.Options{Store: store, Log: l, Logger: logger, Registerer: reg,
		CacheDir: r.cacheDir, CacheBytes: int64(r.cacheBytes), ChunkBytes: int64(r.chunkBytes), UploadInterval: r.uploadInterval})
	if err != nil {
		return nil, err
	}
	logger.Info("remote storage", "store", store.String())
	return func() { t.Close() }, nil
}
