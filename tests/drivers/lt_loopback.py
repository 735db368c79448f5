"""libtorrent settings the drivers share: a plain session on a loopback address, and a private
DHT whose nodes all sit on 127.x (libtorrent's defaults refuse many nodes per address and
rate-limit them, and some builds reject node ids that do not match their address)."""

import libtorrent as lt


def plain_loopback(host):
    """No discovery beyond what a test gives (no LSD, UPnP, NAT-PMP), TCP only, no
    encryption, no rate limits, several connections per address, and outgoing connections
    from `host` (libtorrent otherwise dials from 127.0.0.1 whatever the listen address)."""
    return {
        "outgoing_interfaces": host,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": 0,
        "download_rate_limit": 0,
        "out_enc_policy": int(lt.enc_policy.disabled),
        "in_enc_policy": int(lt.enc_policy.disabled),
    }


def loopback_dht(bootstrap):
    """The DHT on, bootstrapped only from `bootstrap` ("host:port,..."), with the address
    restrictions and rate-limit blocking that a loopback DHT trips over turned off."""
    return {
        "enable_dht": True,
        "dht_bootstrap_nodes": bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_block_ratelimit": 10000,
        "dht_block_timeout": 1,
    }


def relax_dht_node_checks(session):
    """Turns off the node-id checks that reject loopback nodes. Not every build knows these
    settings, so each is tried on its own."""
    for key in ("dht_prefer_verified_node_ids", "dht_ignore_dark_internet", "dht_enforce_node_id"):
        try:
            session.apply_settings({key: False})
        except (KeyError, TypeError):
            pass
