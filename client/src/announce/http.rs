//! Announce and scrape over HTTP and HTTPS (BEP 3, BEP 7 `peers6`, BEP 23 compact peers,
//! BEP 48 scrape), through one shared reqwest client (rustls for HTTPS).
//!
//! Invariants:
//! - A reply is read up to [`HttpConfig::max_reply`] bytes and refused past it, before it
//!   is decoded (a `Content-Length` over the cap is refused without reading).
//! - Every request is bounded by [`HttpConfig::timeout`]; redirects are followed at most
//!   [`HttpConfig::max_redirects`] times.
//! - A `failure reason` (also in a reply with an error status) becomes
//!   [`AnnounceError::Refused`] with the tracker's text; network errors never carry the URL,
//!   which may hold a passkey.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::time::Duration;

use rill_common::InfoHash;
use rill_common::tracker::http::{
    AnnounceRequest, AnnounceResponse, ScrapeRequest, ScrapeResponse, scrape_url,
};

use super::{AnnounceError, Reply, Request, ScrapeCounts};

/// Limits of the HTTP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Whole-request timeout (connect, send, read the reply).
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Largest reply read, in bytes.
    pub max_reply: usize,
    /// Most redirects followed.
    pub max_redirects: usize,
    /// Extra trusted root certificates (DER), for trackers with a private CA (and tests).
    pub root_certificates: Vec<Vec<u8>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            // 2000 dictionary-model peers are about 200 KB; compact ones 12 KB.
            max_reply: 1 << 20,
            max_redirects: 5,
            root_certificates: Vec::new(),
        }
    }
}

/// An HTTP(S) tracker client; cheap to clone (one connection pool for all torrents).
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    max_reply: usize,
}

impl HttpClient {
    /// A client with `config`'s limits.
    pub fn new(config: &HttpConfig) -> Result<Self, AnnounceError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::limited(config.max_redirects))
            // Announces are minutes apart, so keep-alive buys nothing; and without pooled
            // connections the client is not tied to the runtime that made them.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("Rill/", env!("CARGO_PKG_VERSION")));
        for der in &config.root_certificates {
            let cert = reqwest::Certificate::from_der(der)
                .map_err(|e| AnnounceError::Network(format!("bad root certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| AnnounceError::Network(e.to_string()))?;
        Ok(HttpClient {
            client,
            max_reply: config.max_reply,
        })
    }

    /// Wraps a reqwest client built elsewhere, reading replies up to `max_reply` bytes.
    pub fn from_reqwest(client: reqwest::Client, max_reply: usize) -> Self {
        HttpClient { client, max_reply }
    }

    /// Announces `request` to the tracker at `url` (which may carry its own query, e.g. a
    /// passkey). Compact peers are asked for; dictionary replies are read too.
    pub async fn announce(&self, url: &str, request: &Request) -> Result<Reply, AnnounceError> {
        let query = AnnounceRequest {
            uploaded: request.uploaded,
            downloaded: request.downloaded,
            left: request.left,
            event: request.event,
            numwant: request.numwant,
            key: Some(format!("{:08X}", request.key)),
            tracker_id: request.tracker_id.clone(),
            ..AnnounceRequest::new(request.info_hash, request.peer_id, request.port)
        };
        let (status, body) = self.get(&query.announce_url(url)).await?;
        match AnnounceResponse::from_bytes(&body) {
            Ok(AnnounceResponse::Failure(reason)) => Err(AnnounceError::Refused(reason)),
            Ok(AnnounceResponse::Success(reply)) if status == 200 => Ok(Reply {
                interval: reply.interval,
                min_interval: reply.min_interval,
                seeders: reply.complete,
                leechers: reply.incomplete,
                tracker_id: reply.tracker_id,
                warning: reply.warning_message,
                peers: reply.peers.into_iter().map(|p| p.addr).collect(),
            }),
            Ok(AnnounceResponse::Success(_)) => Err(AnnounceError::Status(status)),
            Err(_) if status != 200 => Err(AnnounceError::Status(status)),
            Err(e) => Err(e.into()),
        }
    }

    /// Scrapes one torrent from the tracker whose announce URL is `announce_url` (BEP 48).
    pub async fn scrape(
        &self,
        announce_url: &str,
        info_hash: InfoHash,
    ) -> Result<ScrapeCounts, AnnounceError> {
        let base = scrape_url(announce_url)
            .ok_or_else(|| AnnounceError::NoScrape(announce_url.to_owned()))?;
        let request = ScrapeRequest {
            info_hashes: vec![info_hash],
        };
        let (status, body) = self.get(&request.scrape_url(&base)).await?;
        match ScrapeResponse::from_bytes(&body) {
            Ok(ScrapeResponse::Failure(reason)) => Err(AnnounceError::Refused(reason)),
            Ok(ScrapeResponse::Success(reply)) if status == 200 => {
                // A tracker that does not know the torrent leaves it out: all zero.
                let stats = reply.files.get(&info_hash).cloned().unwrap_or_default();
                Ok(ScrapeCounts {
                    seeders: stats.complete,
                    leechers: stats.incomplete,
                    completed: stats.downloaded,
                })
            }
            Ok(ScrapeResponse::Success(_)) => Err(AnnounceError::Status(status)),
            Err(_) if status != 200 => Err(AnnounceError::Status(status)),
            Err(e) => Err(e.into()),
        }
    }

    /// GETs `url` and reads the body up to the cap.
    async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), AnnounceError> {
        let mut response = self.client.get(url).send().await.map_err(network)?;
        let status = response.status().as_u16();
        let max = self.max_reply;
        if response
            .content_length()
            .is_some_and(|len| len > max as u64)
        {
            return Err(AnnounceError::TooLarge { max });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            if body.len() + chunk.len() > max {
                return Err(AnnounceError::TooLarge { max });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

/// A reqwest error as text, without the URL (it may hold a passkey).
fn network(error: reqwest::Error) -> AnnounceError {
    if error.is_timeout() {
        return AnnounceError::Timeout;
    }
    let error = error.without_url();
    // The source chain says why (connection refused, TLS, ...).
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    AnnounceError::Network(text)
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
