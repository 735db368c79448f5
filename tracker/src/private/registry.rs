//! The registry: users, registered torrents and the client allow-list, in memory.
//!
//! This is what the persistence layer loads at start and keeps in sync with the database
//! (the admin CLI and API change the database, then apply the same change here).
//!
//! Invariants: user ids, passkeys, torrent ids and info hashes are each unique (an add that
//! would break this is refused with a [`RegistryError`] and changes nothing); the passkey
//! index always maps exactly the passkeys of the current users.

use std::collections::HashMap;

use rill_common::{InfoHash, PeerId};
use thiserror::Error;

use super::Passkey;

/// A user's database id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub u64);

/// A registered torrent's database id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TorrentId(pub u64);

/// An upload multiplier in percent: 100 credits uploads as they are, 200 doubles them,
/// 0 credits nothing. Percent keeps the arithmetic in integers (see the ledger's rounding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadMultiplier(pub u32);

impl UploadMultiplier {
    /// 1×: uploads credited as reported.
    pub const ONE: UploadMultiplier = UploadMultiplier(100);
}

impl Default for UploadMultiplier {
    fn default() -> Self {
        UploadMultiplier::ONE
    }
}

/// A user, as the database stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The database id.
    pub id: UserId,
    /// The user name (for the admin tools and logs).
    pub name: String,
    /// The secret in the user's announce URLs.
    pub passkey: Passkey,
    /// `Some(reason)` when the account is disabled: its announces are refused with it.
    pub disabled: Option<String>,
}

/// A registered torrent, as the database stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Torrent {
    /// The database id.
    pub id: TorrentId,
    /// The info hash announces name.
    pub info_hash: InfoHash,
    /// Freeleech: downloads are not credited.
    pub freeleech: bool,
    /// Scales upload credit.
    pub upload_multiplier: UploadMultiplier,
}

/// A peer-id prefix of an allowed client, e.g. `-qB`, `-TR`, `-lt`, `-RL` (BEP 20 style).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientPrefix(Vec<u8>);

impl ClientPrefix {
    /// Validates a prefix: 1 to 20 printable ASCII characters.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let ok = (1..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(ClientPrefix(text.as_bytes().to_vec()))
        } else {
            Err(RegistryError::ClientPrefix(text.escape_debug().to_string()))
        }
    }

    /// Whether `peer_id` starts with this prefix.
    pub fn matches(&self, peer_id: &PeerId) -> bool {
        peer_id.as_bytes().starts_with(&self.0)
    }

    /// The prefix's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Why a registry change was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RegistryError {
    /// The user id is taken.
    #[error("user {0:?} already exists")]
    DuplicateUser(UserId),
    /// Another user has this passkey.
    #[error("another user has this passkey")]
    DuplicatePasskey,
    /// No user with this id.
    #[error("no user {0:?}")]
    UnknownUser(UserId),
    /// The info hash or torrent id is already registered.
    #[error("torrent {0} is already registered")]
    DuplicateTorrent(String),
    /// No torrent with this info hash.
    #[error("torrent {0} is not registered")]
    UnknownTorrent(InfoHash),
    /// Not a valid client prefix.
    #[error("invalid client prefix {0:?}: 1 to 20 printable ASCII characters")]
    ClientPrefix(String),
}

/// A user (the rate buckets are the tracker's, kept apart from the registry so that the
/// registry is read-only between reloads).
#[derive(Clone, Debug)]
pub(super) struct UserEntry {
    pub(super) user: User,
}

/// A map whose keys no client chooses (ids, and info hashes registered by the admin): a
/// fast hasher with a random seed. A client's lookup of a key it chose can only probe
/// (it inserts nothing), so it cannot build colliding chains.
type AdminMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Users, torrents and the client allow-list.
///
/// The passkey index keeps std's keyed SipHash (see `passkey.rs` on lookup timing).
#[derive(Clone, Debug, Default)]
pub struct Registry {
    users: AdminMap<UserId, UserEntry>,
    by_passkey: HashMap<Passkey, UserId>,
    torrents: AdminMap<InfoHash, Torrent>,
    torrent_ids: AdminMap<TorrentId, InfoHash>,
    clients: Vec<ClientPrefix>,
}

impl Registry {
    /// An empty registry (no users, no torrents, every client allowed).
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a user; refused if its id or passkey is taken.
    pub fn add_user(&mut self, user: User) -> Result<(), RegistryError> {
        if self.users.contains_key(&user.id) {
            return Err(RegistryError::DuplicateUser(user.id));
        }
        if self.by_passkey.contains_key(&user.passkey) {
            return Err(RegistryError::DuplicatePasskey);
        }
        self.by_passkey.insert(user.passkey, user.id);
        self.users.insert(user.id, UserEntry { user });
        Ok(())
    }

    /// Removes a user (its passkey stops working at once) and returns it.
    pub fn remove_user(&mut self, id: UserId) -> Option<User> {
        let entry = self.users.remove(&id)?;
        self.by_passkey.remove(&entry.user.passkey);
        Some(entry.user)
    }

    /// The user with this id.
    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.get(&id).map(|e| &e.user)
    }

    /// The user with this passkey.
    pub fn user_by_passkey(&self, passkey: &Passkey) -> Option<&User> {
        self.by_passkey.get(passkey).and_then(|id| self.user(*id))
    }

    /// Every user, in no particular order.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values().map(|e| &e.user)
    }

    /// Disables a user: its announces are refused with "account disabled: `reason`".
    pub fn disable_user(&mut self, id: UserId, reason: &str) -> Result<(), RegistryError> {
        let entry = self.entry_mut(id)?;
        entry.user.disabled = Some(reason.to_owned());
        Ok(())
    }

    /// Enables a disabled user again.
    pub fn enable_user(&mut self, id: UserId) -> Result<(), RegistryError> {
        self.entry_mut(id)?.user.disabled = None;
        Ok(())
    }

    /// Gives a user a new passkey; the old one stops working at once.
    pub fn reset_passkey(&mut self, id: UserId, passkey: Passkey) -> Result<(), RegistryError> {
        if self
            .by_passkey
            .get(&passkey)
            .is_some_and(|owner| *owner != id)
        {
            return Err(RegistryError::DuplicatePasskey);
        }
        let entry = self
            .users
            .get_mut(&id)
            .ok_or(RegistryError::UnknownUser(id))?;
        let old = std::mem::replace(&mut entry.user.passkey, passkey);
        self.by_passkey.remove(&old);
        self.by_passkey.insert(passkey, id);
        Ok(())
    }

    /// Registers a torrent; refused if its info hash or id is taken.
    pub fn add_torrent(&mut self, torrent: Torrent) -> Result<(), RegistryError> {
        if self.torrents.contains_key(&torrent.info_hash) {
            return Err(RegistryError::DuplicateTorrent(torrent.info_hash.to_hex()));
        }
        if self.torrent_ids.contains_key(&torrent.id) {
            return Err(RegistryError::DuplicateTorrent(format!(
                "id {}",
                torrent.id.0
            )));
        }
        self.torrent_ids.insert(torrent.id, torrent.info_hash);
        self.torrents.insert(torrent.info_hash, torrent);
        Ok(())
    }

    /// Unregisters a torrent: its announces are refused from now on. Peer baselines of it
    /// are left to expire (purge).
    pub fn remove_torrent(&mut self, info_hash: &InfoHash) -> Option<Torrent> {
        let torrent = self.torrents.remove(info_hash)?;
        self.torrent_ids.remove(&torrent.id);
        Some(torrent)
    }

    /// The registered torrent with this info hash.
    pub fn torrent(&self, info_hash: &InfoHash) -> Option<&Torrent> {
        self.torrents.get(info_hash)
    }

    /// The registered torrent with this database id.
    pub fn torrent_by_id(&self, id: TorrentId) -> Option<&Torrent> {
        self.torrent_ids
            .get(&id)
            .and_then(|info_hash| self.torrents.get(info_hash))
    }

    /// Every registered torrent, in no particular order.
    pub fn torrents(&self) -> impl Iterator<Item = &Torrent> {
        self.torrents.values()
    }

    /// Turns freeleech on or off (applies to deltas credited from the next announce on).
    pub fn set_freeleech(&mut self, info_hash: &InfoHash, on: bool) -> Result<(), RegistryError> {
        self.torrent_mut(info_hash)?.freeleech = on;
        Ok(())
    }

    /// Sets the upload multiplier (applies to deltas credited from the next announce on).
    pub fn set_upload_multiplier(
        &mut self,
        info_hash: &InfoHash,
        multiplier: UploadMultiplier,
    ) -> Result<(), RegistryError> {
        self.torrent_mut(info_hash)?.upload_multiplier = multiplier;
        Ok(())
    }

    /// Replaces the client allow-list; empty allows every client.
    pub fn set_allowed_clients(&mut self, prefixes: Vec<ClientPrefix>) {
        self.clients = prefixes;
    }

    /// The client allow-list (empty: every client allowed).
    pub fn allowed_clients(&self) -> &[ClientPrefix] {
        &self.clients
    }

    /// Whether a peer id passes the allow-list.
    pub fn client_allowed(&self, peer_id: &PeerId) -> bool {
        self.clients.is_empty() || self.clients.iter().any(|p| p.matches(peer_id))
    }

    fn entry_mut(&mut self, id: UserId) -> Result<&mut UserEntry, RegistryError> {
        self.users
            .get_mut(&id)
            .ok_or(RegistryError::UnknownUser(id))
    }

    fn torrent_mut(&mut self, info_hash: &InfoHash) -> Result<&mut Torrent, RegistryError> {
        self.torrents
            .get_mut(info_hash)
            .ok_or(RegistryError::UnknownTorrent(*info_hash))
    }
}
