//! A minimal blocking HTTP/1.1 client for `http://` tracker URLs (no TLS, no redirects), and
//! a BEP 48 scrape built on `rill_common::tracker::http`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};
use rill_common::InfoHash;
use rill_common::tracker::http::{ScrapeReply, ScrapeRequest, ScrapeResponse, scrape_url};

/// Largest response body read (trackers' replies are small).
const MAX_RESPONSE: u64 = 4 << 20;
/// Connect, read and write timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `GET url` (an `http://HOST:PORT/PATH?QUERY` URL, sent as is), returning the status code and
/// body. The connection is closed after one request.
pub fn http_get(url: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("not an http:// URL: {url}"))?;
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let target = if target.is_empty() { "/" } else { target };
    let address = std::net::ToSocketAddrs::to_socket_addrs(host)
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rill-tests\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .with_context(|| format!("reading the reply to GET {url}"))?;
    parse_response(&response).with_context(|| format!("reply to GET {url}"))
}

/// Scrapes `info_hashes` from the tracker of `announce_url` (its scrape URL by the BEP 48
/// convention) and returns the decoded reply; a `failure reason` is an error.
pub fn http_scrape(announce_url: &str, info_hashes: &[InfoHash]) -> anyhow::Result<ScrapeReply> {
    let base = scrape_url(announce_url).with_context(|| {
        format!("{announce_url} has no scrape URL (path must end in /announce…)")
    })?;
    let request = ScrapeRequest {
        info_hashes: info_hashes.to_vec(),
    };
    let url = request.scrape_url(&base);
    let (status, body) = http_get(&url)?;
    if status != 200 {
        bail!(
            "scrape {url}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    match ScrapeResponse::from_bytes(&body)
        .with_context(|| format!("scrape {url}: {}", String::from_utf8_lossy(&body)))?
    {
        ScrapeResponse::Success(reply) => Ok(reply),
        ScrapeResponse::Failure(reason) => bail!("scrape {url} failed: {reason}"),
    }
}

/// Splits a raw HTTP/1.x response into status and body, undoing chunked encoding.
fn parse_response(response: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let mut lines = head.lines();
    let status_line = lines.next().context("empty response")?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = body
            .windows(2)
            .position(|window| window == b"\r\n")
            .context("chunk size line")?;
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("chunk size {size_text:?}"))?;
        body = &body[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).context("truncated chunk")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).context("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_responses_decode() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain).unwrap(), (200, b"hello".to_vec()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (404, b"hello".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(http_get("udp://127.0.0.1:1/announce").is_err());
    }
}
