package objstore

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Config locates an S3-compatible store.
type Config struct {
	// URL is s3://BUCKET or s3://BUCKET/PREFIX; every key the Store is
	// given is stored under PREFIX/.
	URL string
	// Endpoint is the service's base URL, http(s)://HOST[:PORT], for
	// stores other than AWS S3 (MinIO, SeaweedFS, Ceph, R2). Empty means
	// $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL when set, AWS otherwise.
	Endpoint string
	// Region; empty means $AWS_REGION, $AWS_DEFAULT_REGION, then
	// us-east-1.
	Region string
	// AccessKey and SecretKey, when set, are the credentials. Otherwise
	// they come from $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, then from
	// CredentialsFile (the AWS shared credentials file format; empty
	// means $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials) and
	// Profile, then from the instance's IAM role.
	AccessKey, SecretKey string
	CredentialsFile      string
	Profile              string
}

// IsURL reports whether loc names an object store location (s3://...)
// rather than a local path.
func IsURL(loc string) bool { return strings.HasPrefix(loc, "s3://") }

// location is a parsed s3:// URL.
type location struct {
	bucket, prefix string
}

func parseURL(s string) (location, error) {
	u, err := url.Parse(s)
	if err != nil {
		return location{}, fmt.Errorf("object store %q: %w (want s3://BUCKET/PREFIX)", s, err)
	}
	if u.Scheme != "s3" {
		return location{}, fmt.Errorf("object store %q: scheme %q is not supported (want s3://BUCKET/PREFIX)", s, u.Scheme)
	}
	if u.Host == "" {
		return location{}, fmt.Errorf("object store %q: no bucket (want s3://BUCKET/PREFIX)", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return location{}, fmt.Errorf("object store %q: credentials, queries and fragments do not belong in the URL (credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a credentials file)", s)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return location{bucket: u.Host, prefix: prefix}, nil
}

func (c Config) endpoint() (host string, secure bool, custom bool, err error) {
	ep := c.Endpoint
	if ep == "" {
		ep = os.Getenv("AWS_ENDPOINT_URL_S3")
	}
	if ep == "" {
		ep = os.Getenv("AWS_ENDPOINT_URL")
	}
	if ep == "" {
		return "s3.amazonaws.com", true, false, nil
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, false, fmt.Errorf("object store endpoint %q: want http://HOST:PORT or https://HOST[:PORT]", ep)
	}
	if strings.Trim(u.Path, "/") != "" {
		return "", false, false, fmt.Errorf("object store endpoint %q: a path is not supported; put the prefix in the s3:// URL", ep)
	}
	return u.Host, u.Scheme == "https", true, nil
}

func (c Config) region() string {
	for _, r := range []string{c.Region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION")} {
		if r != "" {
			return r
		}
	}
	return "us-east-1"
}
