//! The session's DHT (BEP 5): one node per session, on the listen port's number over UDP,
//! on IPv4 and, where the host has it, IPv6 (BEP 32), its routing tables saved in
//! `<download dir>/.rill/dht.json`.
//!
//! Each public torrent is announced (which also looks it up) at start and every
//! [`ANNOUNCE_EVERY`] in each DHT the node is on, so its IPv6 address is announced too;
//! peers found (IPv4 and IPv6) join the torrent's queue like a tracker's. Private
//! torrents (BEP 27) never reach this module: the session checks before calling
//! [`spawn_announcer`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rill_common::InfoHash;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::dht::{DEFAULT_BOOTSTRAP, Dht, DhtConfig, DhtError};

/// How often a torrent is announced (and looked up) again.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(5 * 60);
/// How soon a lookup is retried when the last one found nobody.
pub const RETRY_EMPTY: Duration = Duration::from_secs(30);
/// How soon an announce is retried when no node took it (the table was still empty).
pub const RETRY_UNANNOUNCED: Duration = Duration::from_secs(5);
/// How long the first announce waits for the bootstrap to finish.
pub const BOOTSTRAP_WAIT: Duration = Duration::from_secs(10);
/// The environment variable that turns the DHT off, as `--no-dht` does.
pub const NO_DHT_ENV: &str = "RILL_NO_DHT";

/// The DHT's bootstrap nodes from the flags: `--dht-bootstrap` replaces the defaults;
/// `--no-dht` (or [`NO_DHT_ENV`] set, without `--dht-bootstrap`) turns the DHT off.
pub fn bootstrap_from_flags(bootstrap: &[String], no_dht: bool) -> Option<Vec<String>> {
    if !bootstrap.is_empty() {
        return Some(bootstrap.to_vec());
    }
    if no_dht || std::env::var_os(NO_DHT_ENV).is_some_and(|v| !v.is_empty()) {
        return None;
    }
    Some(DEFAULT_BOOTSTRAP.iter().map(|s| (*s).to_owned()).collect())
}

/// The UDP ports tried in turn, IPv4 then IPv6 (`None`: no IPv6 socket): the listen port's
/// number for both, else any IPv6 port, else any port for both, else IPv4 alone.
fn bind_attempts(port: u16) -> [(u16, Option<u16>); 4] {
    [(port, Some(port)), (port, Some(0)), (0, Some(0)), (0, None)]
}

/// Starts the session's node on UDP `port` of every IPv4 and IPv6 address (another port if
/// that one is taken, IPv4 alone without IPv6), restoring the table saved under `dir`;
/// `None` (with a warning) if it cannot bind.
pub async fn start(bootstrap: &[String], port: u16, dir: &Path) -> Option<Arc<Dht>> {
    let mut config = DhtConfig::new(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    config.bootstrap = bootstrap.to_vec();
    let state_dir = dir.join(".rill");
    // The DHT writes its table there on exit; without the folder it keeps none.
    if let Err(err) = tokio::fs::create_dir_all(&state_dir).await {
        debug!("{}: {err}", state_dir.display());
    }
    config.state_file = Some(state_dir.join("dht.json"));
    let mut last = None;
    for (port4, port6) in bind_attempts(port) {
        // The UDP port of the same number may be taken, or the host may have no IPv6.
        config.bind.set_port(port4);
        config.bind6 = port6.map(|p| SocketAddr::from((Ipv6Addr::UNSPECIFIED, p)));
        match Dht::start(config.clone()).await {
            Ok(dht) => {
                match dht.local_addr6() {
                    Some(v6) => debug!("DHT node {} on {} and {v6}", dht.id(), dht.local_addr()),
                    None => debug!("DHT node {} on {} (no IPv6)", dht.id(), dht.local_addr()),
                }
                return Some(Arc::new(dht));
            }
            Err(err) => {
                debug!("{err}; trying another port");
                last = Some(err);
            }
        }
    }
    if let Some(err) = last {
        warn!("DHT off: {err}");
    }
    None
}

/// Starts a node for one command (`rill info MAGNET`, `rill dht`): UDP `port` (0: any) on
/// IPv4 and, where the host has IPv6, on IPv6 too; no saved table. `Err` only if IPv4 alone
/// cannot bind either.
pub async fn start_transient(bootstrap: Vec<String>, port: u16) -> Result<Dht, DhtError> {
    let mut config = DhtConfig::new(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    config.bootstrap = bootstrap;
    config.bind6 = Some(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
    match Dht::start(config.clone()).await {
        Ok(dht) => Ok(dht),
        Err(err) => {
            debug!("{err}; IPv4 alone");
            config.bind6 = None;
            Dht::start(config).await
        }
    }
}

/// How often the DHT's size and lookups are logged (shown with `-v`).
pub const REPORT_EVERY: Duration = Duration::from_secs(30);

/// Logs the node's size and lookups at `info` now and every [`REPORT_EVERY`], until aborted.
pub fn spawn_reporter(dht: Arc<Dht>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(REPORT_EVERY);
        loop {
            ticker.tick().await;
            let stats = dht.stats();
            info!(
                "DHT: {} nodes ({} IPv6, {} good), {} lookups ({} active), {} peers stored, {} queries answered",
                stats.nodes,
                stats.nodes6,
                stats.good_nodes,
                stats.lookups,
                stats.lookups_active,
                stats.peers_stored,
                stats.queries_answered
            );
        }
    })
}

/// Stops the node (saving its table) once every other holder has let go.
pub async fn stop(dht: Arc<Dht>) {
    match Arc::try_unwrap(dht) {
        Ok(dht) => {
            if let Err(err) = dht.shutdown().await {
                warn!("{err}");
            }
        }
        Err(_) => debug!("DHT still shared at exit; its table is not saved"),
    }
}

/// Announces `info_hash` on TCP `port` now and on a schedule, sending the peers found to
/// `found`; ends when `found` closes. Abort the handle to stop it sooner.
pub fn spawn_announcer(
    dht: Arc<Dht>,
    info_hash: InfoHash,
    port: u16,
    found: mpsc::Sender<Vec<SocketAddr>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // An announce into an empty table reaches nobody: wait for a node that answers.
        let _ = tokio::time::timeout(BOOTSTRAP_WAIT, dht.wait_usable()).await;
        loop {
            let wait = match dht.announce(info_hash, Some(port)).await {
                Ok(outcome) => {
                    info!(
                        "DHT announce of {info_hash}: {} peers, stored on {} nodes",
                        outcome.peers.len(),
                        outcome.announced
                    );
                    let empty = outcome.peers.is_empty();
                    if !empty && found.send(outcome.peers).await.is_err() {
                        return;
                    }
                    if outcome.announced == 0 {
                        RETRY_UNANNOUNCED
                    } else if empty {
                        RETRY_EMPTY
                    } else {
                        ANNOUNCE_EVERY
                    }
                }
                Err(err) => {
                    debug!("DHT announce of {info_hash}: {err}");
                    RETRY_EMPTY
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = found.closed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_ipv6_port_moves_only_the_ipv6_socket() {
        use socket2::{Domain, Protocol, Socket, Type};
        // Hold an IPv6-only UDP port P; the node keeps P for IPv4 and takes another for IPv6.
        let taken = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        taken.set_only_v6(true).unwrap();
        let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
        if taken.bind(&any6.into()).is_err() {
            println!("skipping: no IPv6 here");
            return;
        }
        let port = taken.local_addr().unwrap().as_socket().unwrap().port();
        if std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_err() {
            println!("skipping: UDP port {port} is taken on IPv4 too");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let dht = start(&[], port, dir.path()).await.expect("a DHT node");
        assert_eq!(dht.local_addr().port(), port);
        let v6 = dht.local_addr6().expect("an IPv6 socket");
        assert_ne!(v6.port(), port);
        stop(dht).await;
    }

    #[tokio::test]
    async fn the_session_node_is_on_both_families_where_the_host_has_ipv6() {
        let dir = tempfile::tempdir().unwrap();
        let dht = start(&[], 0, dir.path()).await.expect("a DHT node");
        let has_ipv6 = std::net::UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).is_ok();
        assert_eq!(
            dht.local_addr6().is_some(),
            has_ipv6,
            "{:?}",
            dht.local_addr6()
        );
        stop(dht).await;
    }

    #[test]
    fn bootstrap_flags_replace_the_defaults_and_no_dht_turns_it_off() {
        let given = vec!["127.0.0.1:7000".to_owned()];
        assert_eq!(bootstrap_from_flags(&given, false), Some(given.clone()));
        assert_eq!(bootstrap_from_flags(&[], true), None);
        // Without flags: the public routers, unless the environment turns the DHT off.
        let default = bootstrap_from_flags(&[], false);
        if std::env::var_os(NO_DHT_ENV).is_none() {
            assert_eq!(default.map(|d| d.len()), Some(DEFAULT_BOOTSTRAP.len()));
        }
    }
}
