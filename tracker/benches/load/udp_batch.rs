//! The UDP load generator (BEP 15), built to cost the trackers' shared cores as little as
//! possible per request, so that the measured ceiling is the tracker's, not the generator's.
//!
//! Each generator is one OS thread with one blocking socket and a window of requests in
//! flight (the phase's `LOAD_CONNS` in flight in all, split over `LOAD_UDP_THREADS`
//! generators). A request is a copy of its peer's announce encoded once before the phase
//! (by the codec, so the packet is what a client sends) with the connection id, transaction
//! id and the drawn counters and event patched in. A wake-up reads every reply waiting
//! (`recv` with `MSG_DONTWAIT` until it would block) and answers them with one `sendmmsg`
//! of as many new requests, so the cost per request is a fraction of a system call, no
//! timer and no task wake-up. Replies are matched to their slot by transaction id (the slot
//! index in the low 16 bits, a generation above it) and counted by their length, not
//! decoded. The same generator loads rill-tracker and opentracker.

use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rill_common::tracker::udp::{self, Request};
use rustix::net::{MMsgHdr, RecvFlags, SendAncillaryBuffer, SendFlags};

use crate::population::{Population, draw};
use crate::report::Sample;
use crate::{BenchResult, MAX_REQUESTS, NUMWANT, PEERS, REQUEST_TIMEOUT};

/// Where BEP 15 puts the fields patched per request (the announce layout).
const CONNECTION_ID: std::ops::Range<usize> = 0..8;
const TRANSACTION_ID: std::ops::Range<usize> = 12..16;
const DOWNLOADED: std::ops::Range<usize> = 56..64;
const LEFT: std::ops::Range<usize> = 64..72;
const UPLOADED: std::ops::Range<usize> = 72..80;
const EVENT: std::ops::Range<usize> = 80..84;
/// A reply's header: action and transaction id; an announce reply then has 12 more bytes.
const ANNOUNCE_HEADER: usize = 20;
/// The transaction id of connect requests (slot indexes stay below it).
const CONNECT_SLOT: u32 = 0xffff;
/// How long a blocking receive waits before lost requests are looked for.
const POLL: Duration = Duration::from_millis(50);

/// Every peer's announce, encoded once with connection id and transaction id 0.
pub(crate) fn templates(pop: &Population) -> BenchResult<Arc<Vec<Vec<u8>>>> {
    let packets: Vec<Vec<u8>> = pop
        .peers
        .iter()
        .map(|peer| {
            Request::Announce(udp::AnnounceRequest {
                connection_id: 0,
                transaction_id: 0,
                info_hash: pop.hashes[peer.torrent],
                peer_id: peer.peer_id,
                downloaded: 0,
                left: 0,
                uploaded: 0,
                event: None,
                ip: Ipv4Addr::UNSPECIFIED,
                key: 0,
                num_want: NUMWANT as i32,
                port: peer.port,
                url_data: if pop.passkeys.is_some() {
                    pop.path(peer).into_bytes()
                } else {
                    Vec::new()
                },
            })
            .encode()
        })
        .collect();
    // The patching below must give what the codec would have encoded.
    let mut check = packets.first().ok_or("no peers")?.clone();
    let mut rng = StdRng::seed_from_u64(1);
    let d = draw(&mut rng, true);
    patch(&mut check, 7, 9, &d);
    match Request::decode(&check) {
        Ok(Request::Announce(a))
            if a.connection_id == 7
                && a.transaction_id == 9
                && a.left == d.left
                && a.uploaded == d.uploaded
                && a.downloaded == d.downloaded
                && a.event == Some(rill_common::tracker::AnnounceEvent::Started) => {}
        other => return Err(format!("patched UDP announce decodes wrong: {other:?}")),
    }
    Ok(Arc::new(packets))
}

fn patch(packet: &mut [u8], connection_id: u64, transaction_id: u32, d: &crate::population::Draw) {
    packet[CONNECTION_ID].copy_from_slice(&connection_id.to_be_bytes());
    packet[TRANSACTION_ID].copy_from_slice(&transaction_id.to_be_bytes());
    packet[DOWNLOADED].copy_from_slice(&d.downloaded.to_be_bytes());
    packet[LEFT].copy_from_slice(&d.left.to_be_bytes());
    packet[UPLOADED].copy_from_slice(&d.uploaded.to_be_bytes());
    // BEP 15 event codes: 0 none, 2 started.
    let event: u32 = if d.started { 2 } else { 0 };
    packet[EVENT].copy_from_slice(&event.to_be_bytes());
}

/// One request in flight.
struct Slot {
    transaction_id: u32,
    sent: Instant,
    live: bool,
    packet: Vec<u8>,
}

/// One generator thread's state.
struct Generator {
    socket: UdpSocket,
    templates: Arc<Vec<Vec<u8>>>,
    rng: StdRng,
    connection_id: Option<u64>,
    connect_tx: u32,
    connect_sent: Option<Instant>,
    slots: Vec<Slot>,
    /// Slots to fill and send in the next batch.
    free: Vec<usize>,
    sent: u64,
    budget: u64,
    deadline: Instant,
    sample: Sample,
}

impl Generator {
    /// Handles one reply.
    fn reply(&mut self, packet: &[u8], now: Instant) {
        let (Some(action), Some(tx)) = (packet.get(0..4), packet.get(4..8)) else {
            return;
        };
        let action = u32::from_be_bytes(action.try_into().unwrap_or_default());
        let tx = u32::from_be_bytes(tx.try_into().unwrap_or_default());
        if action == 0 {
            if tx == self.connect_tx
                && let Some(id) = packet.get(8..16)
            {
                self.connection_id = Some(u64::from_be_bytes(id.try_into().unwrap_or_default()));
                self.connect_sent = None;
            }
            return;
        }
        let index = (tx & 0xffff) as usize;
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if !slot.live || slot.transaction_id != tx {
            return; // a late reply to a request counted lost
        }
        slot.live = false;
        let latency = u32::try_from(now.duration_since(slot.sent).as_micros()).unwrap_or(u32::MAX);
        self.sample.latencies_us.push(latency);
        self.sample.last_reply = Some(now);
        match action {
            1 => {
                let peers = packet.len().saturating_sub(ANNOUNCE_HEADER) / 6;
                self.sample.peers += peers as u64;
            }
            _ => {
                // An error (expired connection id, refusal): connect again.
                self.sample.failures += 1;
                self.connection_id = None;
            }
        }
        self.free.push(index);
    }

    /// Counts requests unanswered for `REQUEST_TIMEOUT` as lost and frees their slots.
    fn expire(&mut self, now: Instant) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.live && now.duration_since(slot.sent) > REQUEST_TIMEOUT {
                slot.live = false;
                self.sample.lost += 1;
                self.free.push(i);
            }
        }
    }

    /// Sends a connect if none is in flight (or the last one is old).
    fn connect(&mut self, now: Instant) -> BenchResult<()> {
        if self
            .connect_sent
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            return Ok(());
        }
        if self.sample.connects > 20 {
            return Err("UDP connect keeps failing".to_owned());
        }
        self.connect_tx = (self.rng.random::<u32>() & !0xffff) | CONNECT_SLOT;
        let packet = Request::Connect {
            transaction_id: self.connect_tx,
        }
        .encode();
        self.socket.send(&packet).map_err(|e| e.to_string())?;
        self.sample.connects += 1;
        self.connect_sent = Some(now);
        Ok(())
    }

    /// Fills the free slots with new announces and sends them in one `sendmmsg`.
    fn refill(&mut self, now: Instant) -> BenchResult<()> {
        let Some(connection_id) = self.connection_id else {
            return self.connect(now);
        };
        let mut batch = Vec::with_capacity(self.free.len());
        while let Some(i) = self.free.pop() {
            if now >= self.deadline || self.sent >= self.budget {
                self.free.clear();
                break;
            }
            let peer = self.rng.random_range(0..PEERS);
            let d = draw(&mut self.rng, false);
            let slot = &mut self.slots[i];
            let generation = (slot.transaction_id >> 16).wrapping_add(1) & 0x7fff;
            slot.transaction_id = (generation << 16) | i as u32;
            slot.packet.clear();
            slot.packet.extend_from_slice(&self.templates[peer]);
            patch(&mut slot.packet, connection_id, slot.transaction_id, &d);
            slot.sent = now;
            slot.live = true;
            self.sent += 1;
            batch.push(i);
        }
        let iovs: Vec<[IoSlice<'_>; 1]> = batch
            .iter()
            .map(|&i| [IoSlice::new(&self.slots[i].packet)])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = iovs
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut msgs: Vec<MMsgHdr<'_>> = iovs
            .iter()
            .zip(controls.iter_mut())
            .map(|(iov, control)| MMsgHdr::new(iov, control))
            .collect();
        let mut done = 0;
        while done < msgs.len() {
            match rustix::net::sendmmsg(&self.socket, &mut msgs[done..], SendFlags::empty()) {
                Ok(n) => done += n.max(1),
                // A full send buffer: those requests count as lost after the timeout.
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::NOBUFS) => break,
                Err(e) => return Err(format!("sendmmsg: {e}")),
            }
        }
        Ok(())
    }

    fn live(&self) -> bool {
        self.slots.iter().any(|s| s.live)
    }

    fn run(mut self) -> BenchResult<Sample> {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            self.expire(now);
            if now >= self.deadline && !self.live() {
                return Ok(self.sample);
            }
            self.refill(now)?;
            // Block for the first reply, then take all that are waiting.
            let mut flags = RecvFlags::empty();
            loop {
                match rustix::net::recv(&self.socket, &mut buf[..], flags) {
                    Ok((len, _)) => {
                        let now = Instant::now();
                        self.reply(buf.get(..len).unwrap_or_default(), now);
                        flags = RecvFlags::DONTWAIT;
                    }
                    Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => break,
                    // ICMP "port unreachable" from an earlier send: the server is gone.
                    Err(e) => return Err(format!("recv: {e}")),
                }
            }
        }
    }
}

/// The measured UDP phase: `conns` requests in flight over `threads` generators for `secs`
/// (the requests follow from `round` alone).
pub(crate) async fn udp_phase(
    addr: SocketAddr,
    templates: &Arc<Vec<Vec<u8>>>,
    conns: usize,
    threads: usize,
    secs: u64,
    round: u64,
) -> BenchResult<(Sample, Duration)> {
    let threads = threads.clamp(1, conns);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..threads {
        let window = conns / threads + usize::from(t < conns % threads);
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        socket.connect(addr).map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(POLL))
            .map_err(|e| e.to_string())?;
        let generator = Generator {
            socket,
            templates: Arc::clone(templates),
            rng: StdRng::seed_from_u64(3000 + round * 10_000 + t as u64),
            connection_id: None,
            connect_tx: 0,
            connect_sent: None,
            slots: (0..window)
                .map(|_| Slot {
                    transaction_id: 0,
                    sent: start,
                    live: false,
                    packet: Vec::with_capacity(160),
                })
                .collect(),
            free: (0..window).rev().collect(),
            sent: 0,
            budget: MAX_REQUESTS / threads as u64,
            deadline,
            sample: Sample::default(),
        };
        tasks.spawn_blocking(move || generator.run());
    }
    let mut total = Sample::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.map_err(|e| e.to_string())??);
    }
    let end = total.last_reply.unwrap_or_else(Instant::now);
    Ok((total, end.duration_since(start)))
}
