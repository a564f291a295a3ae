//! The one way Aura opens an S3-compatible bucket (AWS S3, MinIO, Ceph,
//! Garage...): backup targets, the replica and file storage all come here.
//! Credentials come from the standard `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` environment (a systemd `EnvironmentFile=` or
//! credential), never from the data dir; path-style requests, so any
//! endpoint works without wildcard DNS.

use object_store::aws::{AmazonS3, AmazonS3Builder};

/// `s3://bucket/prefix` as (bucket, prefix without surrounding slashes).
pub fn parse_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.trim().strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket, prefix.trim_matches('/')))
}

/// The endpoint the environment names (`AWS_ENDPOINT_URL`, or the older
/// `AWS_ENDPOINT`), empty for AWS itself.
pub fn env_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .unwrap_or_default()
}

/// A client for `bucket` at `endpoint` (empty: the environment's, see
/// `env_endpoint`), signing for `region` (empty: `us-east-1`, which
/// S3-compatible servers accept).
pub fn bucket(bucket: &str, endpoint: &str, region: &str) -> object_store::Result<AmazonS3> {
    let endpoint = if endpoint.is_empty() {
        env_endpoint()
    } else {
        endpoint.to_owned()
    };
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(if region.is_empty() {
            "us-east-1".to_owned()
        } else {
            region.to_lowercase()
        })
        .with_allow_http(endpoint.starts_with("http://"))
        .with_virtual_hosted_style_request(false);
    if !endpoint.is_empty() {
        b = b.with_endpoint(endpoint);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_split_into_bucket_and_prefix() {
        assert_eq!(super::parse_url("s3://b/p/q/"), Some(("b", "p/q")));
        assert_eq!(super::parse_url("s3://b"), Some(("b", "")));
        assert_eq!(super::parse_url("s3:///x"), None);
        assert_eq!(super::parse_url("file:///x"), None);
    }
}
