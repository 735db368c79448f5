//! The swarm scenarios: who is in the swarm, what they know, what must hold at the end.

use super::*;

/// 23 full pieces of 64 KiB (4 blocks) and a short last one.
const TOTAL: usize = 23 * 65536 + 12345;
const PIECE_LEN: u32 = 65536;

fn roles(seeds: usize, liars: usize, leechers: usize) -> Vec<Role> {
    let mut roles = vec![Role::Seed; seeds];
    roles.extend(vec![Role::Liar; liars]);
    roles.extend(vec![Role::Leecher; leechers]);
    roles
}

#[test]
fn one_seed_and_eight_leechers_all_complete() {
    for seed in [1, 2] {
        let mut swarm = Swarm::new(&roles(1, 0, 8), TOTAL, PIECE_LEN, seed);
        swarm.start();
        swarm.run(Duration::from_secs(600), Swarm::honest_complete);
        // Let blocks in flight land before comparing totals.
        swarm.run(Duration::from_secs(60), |s| s.queue.is_empty());
        for node in &swarm.nodes {
            assert_eq!(
                node.store, swarm.nodes[0].store,
                "data verified byte for byte"
            );
            assert_eq!(node.hash_failures, 0);
            let stats = node.state.stats(swarm.now);
            assert_eq!(stats.left, 0);
            assert_eq!(stats.verified, TOTAL as u64);
        }
        // Leechers traded among themselves: the seed did not upload everything.
        let seed_up = swarm.nodes[0].state.stats(swarm.now).uploaded;
        assert!(seed_up < 8 * TOTAL as u64, "seed uploaded {seed_up}");
        let downloaded: u64 = swarm.nodes[1..]
            .iter()
            .map(|n| n.state.stats(swarm.now).downloaded)
            .sum();
        let uploaded: u64 = swarm
            .nodes
            .iter()
            .map(|n| n.state.stats(swarm.now).uploaded)
            .sum();
        assert!(downloaded >= 8 * TOTAL as u64);
        assert_eq!(
            uploaded,
            downloaded + swarm.lost,
            "every block sent is counted once"
        );
    }
}

#[test]
fn the_liar_is_banned_and_everyone_else_completes() {
    for seed in [3, 4] {
        let mut swarm = Swarm::new(&roles(1, 1, 8), TOTAL, PIECE_LEN, seed);
        swarm.start();
        swarm.run(Duration::from_secs(900), Swarm::honest_complete);
        let liar = 1;
        let bans: Vec<&Closed> = swarm
            .closed
            .iter()
            .filter(|(_, _, r)| *r == Reason::Banned)
            .collect();
        let mut banned_by: Vec<usize> = bans.iter().map(|(by, _, _)| *by).collect();
        banned_by.sort();
        banned_by.dedup();
        assert_eq!(
            banned_by,
            (2..10).collect::<Vec<_>>(),
            "every leecher bans the liar"
        );
        assert!(
            bans.iter().all(|(_, of, _)| *of == liar),
            "an honest peer was banned: {bans:?}"
        );
        for node in swarm.nodes.iter().filter(|n| n.role != Role::Liar) {
            assert_eq!(node.store, swarm.nodes[0].store);
        }
        let failures: u32 = swarm.nodes.iter().map(|n| n.hash_failures).sum();
        assert!(failures > 0, "the liar's data was caught by the hash check");
    }
}

#[test]
fn small_connection_limits_still_complete() {
    let mut swarm = Swarm::with(&roles(1, 0, 8), TOTAL, PIECE_LEN, 5, |_, cfg| {
        cfg.max_peers = 3;
        cfg.choker.slots = 2;
    });
    swarm.start();
    swarm.run(Duration::from_secs(900), Swarm::honest_complete);
    let refused = swarm
        .closed
        .iter()
        .filter(|(_, _, r)| *r == Reason::TooManyPeers)
        .count();
    assert!(refused > 0, "the limit was reached");
    for node in &swarm.nodes {
        assert_eq!(node.store, swarm.nodes[0].store);
        assert!(node.links.len() <= 3);
    }
}

#[test]
fn a_leecher_wanting_some_pieces_gets_exactly_those() {
    let count = TOTAL.div_ceil(PIECE_LEN as usize);
    let wanted = |i: usize| i.is_multiple_of(3);
    let mut swarm = Swarm::with(&roles(1, 0, 3), TOTAL, PIECE_LEN, 6, |node, cfg| {
        if node == 1 {
            cfg.piece_priorities = (0..count).map(|i| u8::from(wanted(i))).collect();
        }
    });
    swarm.start();
    swarm.run(Duration::from_secs(600), Swarm::honest_complete);
    let picky = &swarm.nodes[1];
    for i in 0..count as u32 {
        assert_eq!(
            picky.state.have().get(PieceIndex(i)),
            wanted(i as usize),
            "piece {i}"
        );
    }
    assert_eq!(picky.state.stats(swarm.now).left, 0);
    for node in &swarm.nodes[2..] {
        assert_eq!(node.store, swarm.nodes[0].store);
    }
}

#[test]
fn leechers_finish_among_themselves_when_the_seed_leaves() {
    let mut swarm = Swarm::new(&roles(1, 0, 6), TOTAL, PIECE_LEN, 7);
    swarm.start();
    let count = swarm.hashes.len() as u32;
    // Run until every piece is somewhere among the leechers, then the seed stops.
    swarm.run(Duration::from_secs(600), |s| {
        (0..count).all(|i| {
            s.nodes[1..]
                .iter()
                .any(|n| n.state.have().get(PieceIndex(i)))
        })
    });
    assert!(!swarm.honest_complete(), "the seed leaves mid-download");
    swarm.deliver(0, Event::Stop);
    swarm.run(Duration::from_secs(600), Swarm::honest_complete);
    assert!(swarm.nodes[0].links.is_empty());
    for node in &swarm.nodes[1..] {
        assert_eq!(node.store, swarm.nodes[0].store);
    }
}

#[test]
fn leechers_learn_each_other_only_through_pex_and_all_complete() {
    let mut swarm = Swarm::new(&roles(1, 0, 8), TOTAL, PIECE_LEN, 8);
    swarm.start_via_seed();
    swarm.run(Duration::from_secs(600), Swarm::honest_complete);
    assert!(swarm.pex_sent > 0, "PEX was sent");
    assert!(
        swarm.leecher_dials > 0,
        "leechers dialled addresses learnt by PEX"
    );
    for node in &swarm.nodes {
        assert_eq!(node.store, swarm.nodes[0].store);
    }
    // The leechers traded among themselves: the seed did not upload everything.
    let seed_up = swarm.nodes[0].state.stats(swarm.now).uploaded;
    assert!(seed_up < 8 * TOTAL as u64, "seed uploaded {seed_up}");
}

#[test]
fn a_private_swarm_sends_no_pex() {
    let mut swarm = Swarm::with(&roles(1, 0, 4), TOTAL, PIECE_LEN, 9, |_, cfg| {
        cfg.private = true;
    });
    swarm.start_via_seed();
    swarm.run(Duration::from_secs(600), Swarm::honest_complete);
    assert_eq!(swarm.pex_sent, 0, "BEP 27: no PEX");
    assert_eq!(swarm.leecher_dials, 0, "leechers only knew the seed");
    for node in &swarm.nodes {
        assert_eq!(node.store, swarm.nodes[0].store);
    }
}

#[test]
fn magnet_leechers_fetch_the_dict_then_download() {
    let mut roles = roles(1, 0, 3);
    roles.extend([Role::Magnet; 2]);
    let mut swarm = Swarm::new(&roles, TOTAL, PIECE_LEN, 10);
    swarm.start();
    swarm.run(Duration::from_secs(600), Swarm::honest_complete);
    for node in &swarm.nodes {
        assert!(node.fetch.is_none());
        assert_eq!(node.store, swarm.nodes[0].store);
    }
}

#[test]
fn magnets_never_take_a_liars_dict_and_still_complete() {
    for seed in [11, 12, 13] {
        let mut roles = roles(1, 1, 2);
        roles.extend([Role::Magnet; 3]);
        let liar = 1;
        let mut swarm = Swarm::with(&roles, TOTAL, PIECE_LEN, seed, |i, cfg| {
            if i == liar {
                // Same size, one byte off in the middle: only the hash can tell.
                let mut dict = cfg.metadata.clone().unwrap().to_vec();
                let mid = dict.len() / 2;
                dict[mid] ^= 0x55;
                cfg.metadata = Some(Bytes::from(dict));
            }
        });
        // Magnets hear of the liar first, of everyone else a little later; nobody dials them.
        let addrs: Vec<SocketAddr> = swarm.nodes.iter().map(|n| n.addr).collect();
        for i in 0..swarm.nodes.len() {
            let others: Vec<SocketAddr> =
                addrs.iter().copied().filter(|a| *a != addrs[i]).collect();
            if swarm.nodes[i].role == Role::Magnet {
                swarm.push(i, Event::PeersFound(vec![addrs[liar]]), Duration::ZERO);
                swarm.push(i, Event::PeersFound(others), Duration::from_secs(2));
            } else {
                let known = (0..swarm.nodes.len())
                    .filter(|j| *j != i && swarm.nodes[*j].role != Role::Magnet)
                    .map(|j| addrs[j])
                    .collect();
                swarm.push(i, Event::PeersFound(known), Duration::ZERO);
            }
            swarm.push(i, Event::Start, Duration::ZERO);
        }
        // `metadata_fetched` asserts the hash and that the dict parses.
        swarm.run(Duration::from_secs(900), Swarm::honest_complete);
        for node in swarm.nodes.iter().filter(|n| n.role != Role::Liar) {
            assert_eq!(node.store, swarm.nodes[0].store);
        }
        let honest_banned = swarm
            .closed
            .iter()
            .any(|(_, of, r)| *r == Reason::Banned && *of != liar);
        assert!(
            !honest_banned,
            "an honest peer was banned: {:?}",
            swarm.closed
        );
        let magnets = swarm
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.role == Role::Magnet);
        for (i, _) in magnets {
            let banned_liar = swarm
                .closed
                .iter()
                .any(|(by, of, r)| *by == i && *of == liar && *r == Reason::Banned);
            assert!(banned_liar, "magnet {i} banned the liar");
        }
    }
}
