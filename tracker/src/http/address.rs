//! Which address an HTTP announce comes from.
//!
//! The socket's peer address, unless that peer is a trusted proxy: then the right-most hop of
//! `X-Forwarded-For` that is not itself a trusted proxy (each proxy appends the address it
//! received from, so the hops right of the first untrusted one are ours and the ones left of
//! it are the client's word), or `X-Real-IP` when there is no `X-Forwarded-For`. Headers from
//! anyone else are ignored, so a client cannot choose its address in the swarm. IPv4-mapped
//! IPv6 addresses (`::ffff:a.b.c.d`) are IPv4 throughout.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::IpRange;

/// The client's address for a request whose socket peer is `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRange]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    if !forwarded.is_empty() {
        // Walk from the right: each trusted hop vouches for the one before it.
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Garbage from here on was written by the client (or a broken proxy): stop at
                // the last address a trusted proxy vouched for.
                return client;
            };
            client = ip;
            if !is_trusted(ip) {
                return ip;
            }
        }
        return client;
    }
    headers
        .get("x-real-ip")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_hop)
        .unwrap_or(peer)
}

/// One hop: an address, an `addr:port` or `[v6]:port` endpoint, with blanks around it.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let ip = text
        .parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn ranges(texts: &[&str]) -> Vec<IpRange> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-real-ip", "2.2.2.2")]);
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &[]), ip("9.9.9.9"));
        assert_eq!(
            client_ip(ip("9.9.9.9"), &h, &ranges(&["10.0.0.0/8"])),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let h = HeaderMap::new();
        assert_eq!(client_ip(ip("::ffff:1.2.3.4"), &h, &[]), ip("1.2.3.4"));
        let trusted = ranges(&["127.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "::ffff:5.6.7.8")]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("5.6.7.8")
        );
    }

    #[test]
    fn right_most_untrusted_hop_wins() {
        let trusted = ranges(&["10.0.0.0/8"]);
        // The client claims 6.6.6.6; 5.5.5.5 is who connected to our first proxy.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 5.5.5.5, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("5.5.5.5"));
        // Several headers are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "5.5.5.5:1234, 10.1.1.1"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("5.5.5.5"));
        // Every hop trusted: the left-most.
        let h = headers(&[("x-forwarded-for", "10.0.0.7, 10.0.0.8")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.7"));
        // Garbage stops the walk at the last vouched-for address.
        let h = headers(&[("x-forwarded-for", "5.5.5.5, junk, 10.0.0.9")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.9"));
        let h = headers(&[("x-forwarded-for", "junk")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
        // IPv6 hops with ports.
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:80")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("2001:db8::1"));
    }

    #[test]
    fn real_ip_only_without_forwarded_for() {
        let trusted = ranges(&["127.0.0.1"]);
        let h = headers(&[("x-real-ip", "4.4.4.4")]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("4.4.4.4"));
        let h = headers(&[("x-real-ip", "4.4.4.4"), ("x-forwarded-for", "3.3.3.3")]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("3.3.3.3"));
        let h = headers(&[("x-real-ip", "nonsense")]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }
}
