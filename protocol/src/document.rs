//! One live document's decisions as a sans-IO state machine: it owns the yrs document (inside
//! its `Awareness`), the ownership index and the list of connections with their presence, and
//! turns each input (a connection joins or leaves, an update, sync step 1, an awareness update,
//! a server edit) into effects for the host to carry out: store these bytes and then send these
//! frames to these connections, send this frame now, close that connection. No IO, no clock,
//! no tokio: the host (`server/src/doc.rs`) batches, stores, sends and compacts.
//!
//! The promise the effects encode: an accepted update comes out only as `Effect::Store`, whose
//! frame the host forwards after the store has the entry; nothing is ever sent that is not
//! stored (sync step 2 is answered from the document, which holds only what was accepted, and
//! the host flushes its pending stores before it answers).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::{
    Any, Array, ClientID, Doc, GetString, IdSet, Map, Out, ReadTxn, StateVector, Text, Transact,
    TransactionMut,
};

use crate::anonymity::scrub_employee_awareness;
use crate::errors::CloseCode;
use crate::ids::DocName;
use crate::index::{Index, Owner, Shape};
use crate::judge::{self, Accepted, Context, Limits, Rejection, Writer, YrsView};
use crate::policy::SessionPolicy;
use crate::roles::Role;
use crate::stored;
use crate::structs;
use crate::template::Template;
use crate::wire::{
    decode_update, encode_awareness, encode_join_frames, encode_permission_denied,
    encode_sync_step2, encode_update,
};

pub type ConnId = u64;

/// Most presence ids one connection may show.
pub const MAX_PRESENCE_IDS: usize = 4;

/// An awareness message with no entries (message type 1, a one-byte payload: zero clients).
/// The host sends it to a connection that was sent nothing for a while, so y-websocket (which
/// closes a socket that received no message for 30 s) stays connected.
pub const EMPTY_AWARENESS: &[u8] = &[1, 1, 0];

/// Who is on the other end of a connection, as far as the document's decisions go.
#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub role: Role,
    /// The participant's tag in the ownership index.
    pub owner: Owner,
    /// The name presence shows for an employee (their pseudonym).
    pub display: String,
    /// Whether the connection may write the document (the baseline matrix).
    pub can_write: bool,
}

struct Member {
    info: MemberInfo,
    /// The awareness ids (the client's own) this connection shows, each with the id it is
    /// relayed under: an employee's under a per-connection alias, never their Yjs client id, so
    /// no card can be matched to a presence entry by id.
    awareness_ids: HashMap<ClientID, ClientID>,
}

/// What the host must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Append `entry` to the document's log; once it is stored, send `frame` to every member
    /// but `except` (`None`: a server edit, sent to everyone).
    Store {
        entry: Bytes,
        frame: Bytes,
        except: Option<ConnId>,
    },
    /// Send `frame` to one connection now.
    Send { to: ConnId, frame: Bytes },
    /// Send `frame` to every member but `except` now (presence).
    Broadcast {
        except: Option<ConnId>,
        frame: Bytes,
    },
    /// Send `frame` to every member not in `except` now (coalesced presence: the senders of a
    /// tick get their own frame, without the states they sent, in a `Send` beside it).
    BroadcastExcept { except: Vec<ConnId>, frame: Bytes },
    /// Close a connection (it has been removed from the document).
    Close {
        conn: ConnId,
        code: CloseCode,
        reason: String,
    },
    /// A refusal, for the host's metrics and logs (the frame is in a `Send` beside it).
    Refused { conn: ConnId, reason: String },
    /// Items a member created; the host stamps them (owner tag, author, creation time).
    Created { by: ConnId, items: Vec<String> },
    /// Items a member removed, as they were just before: the host keeps them for their author
    /// to restore (undo of a deletion).
    Removed { by: ConnId, items: Vec<RemovedItem> },
    /// The in-memory document can no longer be trusted: the host closes everyone (the effects
    /// already say so), drops it and lets the next join reload it from the store.
    Reload,
}

/// A card or row as it was when a participant removed it: its plain fields (the server's
/// `owner`, `author`, `createdAt`, `votes` among them) and its texts as strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemovedItem {
    pub key: String,
    pub fields: std::collections::BTreeMap<String, serde_json::Value>,
    pub texts: std::collections::BTreeMap<String, String>,
}

/// Reads the live item `key` of `root` (nothing changes).
fn read_removed<T: ReadTxn>(txn: &T, root: &str, key: &str) -> Option<RemovedItem> {
    let Some(Out::YMap(item)) = txn.get_map(root)?.get(txn, key) else {
        return None;
    };
    let mut out = RemovedItem {
        key: key.to_owned(),
        ..RemovedItem::default()
    };
    for (field, value) in item.iter(txn) {
        match value {
            Out::Any(a) => {
                let v = serde_json::to_value(&a).unwrap_or(serde_json::Value::Null);
                out.fields.insert(field.to_owned(), v);
            }
            Out::YText(t) => {
                out.texts.insert(field.to_owned(), t.get_string(txn));
            }
            // The schema allows nothing else in an item.
            _ => {}
        }
    }
    Some(out)
}

/// Rules that come from outside the document: the template and the facilitator's session.
pub struct Rules<'a> {
    pub template: &'a Template,
    pub session: &'a SessionPolicy,
    /// `owns_tag(sub-bound check)`: whether an item's `owner` tag was made for this writer.
    pub owns_tag: &'a dyn Fn(&str, &str) -> bool,
}

pub struct DocCore {
    name: DocName,
    limits: Limits,
    awareness: Awareness,
    index: Index,
    members: HashMap<ConnId, Member>,
    /// Which connection currently shows which awareness id (who may claim one at all is the
    /// index's `claim_presence`); a newer connection of the same participant takes it over.
    awareness_owner: HashMap<ClientID, ConnId>,
    /// Sync step 2 for an empty state vector, encoded once per change and shared.
    full_state_frame: Option<Bytes>,
    /// Snapshot plus log, for the document size limit.
    doc_bytes: u64,
    /// Secret of the presence aliases (set by the host from a random source).
    alias_seed: u64,
    /// Presence accepted since the last [`DocCore::flush_presence`], by the id it is relayed
    /// under (the newest state wins), with the connection that sent it.
    pending_presence: HashMap<ClientID, (ConnId, AwarenessUpdateEntry)>,
}

/// The content a document is loaded from.
pub struct Stored<'a> {
    pub snapshot: Option<&'a [u8]>,
    pub log: Vec<&'a [u8]>,
}

impl DocCore {
    /// Loads a document from its stored snapshot and log. Returns the core and the errors met
    /// (parts that could not be read are skipped, never fatal).
    pub fn load(name: DocName, limits: Limits, stored_doc: Stored<'_>) -> (DocCore, Vec<String>) {
        let doc = Doc::new();
        let mut index = Index::new();
        let mut errors = Vec::new();
        let mut bytes = 0u64;
        if let Some(raw) = stored_doc.snapshot {
            bytes += raw.len() as u64;
            let (stored_index, state) = stored::decode_snapshot(raw);
            match stored_index.map(Index::from_bytes) {
                Some(Ok(i)) => {
                    index = i;
                    let applied = decode_update(state)
                        .map_err(|e| e.to_string())
                        .and_then(|u| {
                            doc.transact_mut()
                                .apply_update(u)
                                .map_err(|e| e.to_string())
                        });
                    if let Err(e) = applied {
                        errors.push(format!("snapshot skipped: {e}"));
                    }
                }
                other => {
                    if let Some(Err(e)) = other {
                        errors.push(format!(
                            "the stored index cannot be read ({e}); client ids are unowned"
                        ));
                    }
                    if let Err(e) = replay(&doc, &mut index, name, &limits, None, state) {
                        errors.push(format!("snapshot skipped: {e}"));
                    }
                }
            }
        }
        for (i, raw) in stored_doc.log.iter().enumerate() {
            bytes += raw.len() as u64;
            let (writer, update) = stored::decode_entry(raw);
            if let Err(e) = replay(&doc, &mut index, name, &limits, writer.as_ref(), update) {
                errors.push(format!("log entry {i} skipped: {e}"));
            }
        }
        // The server writes under this document's own client id.
        index.claim_for_server(doc.client_id().get());
        let core = DocCore {
            name,
            limits,
            awareness: Awareness::new(doc),
            index,
            members: HashMap::new(),
            awareness_owner: HashMap::new(),
            full_state_frame: None,
            doc_bytes: bytes,
            alias_seed: 0,
            pending_presence: HashMap::new(),
        };
        (core, errors)
    }

    /// Sets the secret the presence aliases are derived from (a random value per load).
    pub fn set_alias_seed(&mut self, seed: u64) {
        self.alias_seed = seed;
    }

    fn alias(&self, conn: ConnId, client: ClientID) -> ClientID {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.alias_seed, conn, client.get()).hash(&mut h);
        ClientID::new((h.finish() & ((1 << 53) - 1)).max(1))
    }

    pub fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.members.keys().copied()
    }

    /// A connection joins: it gets sync step 1 and the current presence.
    pub fn join(&mut self, conn: ConnId, info: MemberInfo) -> Vec<Effect> {
        self.members.insert(
            conn,
            Member {
                info,
                awareness_ids: HashMap::new(),
            },
        );
        encode_join_frames(&self.awareness)
            .into_iter()
            .map(|f| Effect::Send {
                to: conn,
                frame: Bytes::from(f),
            })
            .collect()
    }

    /// A connection leaves (or is dropped): the presence it still shows is removed for all.
    pub fn leave(&mut self, conn: ConnId) -> Vec<Effect> {
        let Some(member) = self.members.remove(&conn) else {
            return Vec::new();
        };
        let mut shown: Vec<ClientID> = Vec::new();
        for (real, relayed) in member.awareness_ids {
            if self.awareness_owner.get(&real) == Some(&conn) {
                self.awareness_owner.remove(&real);
                shown.push(relayed);
            }
        }
        self.remove_presence(shown)
    }

    /// Removes presence states (by the id they are relayed under) and tells everyone.
    fn remove_presence(&mut self, ids: Vec<ClientID>) -> Vec<Effect> {
        if ids.is_empty() {
            return Vec::new();
        }
        for id in &ids {
            self.awareness.remove_state(*id);
            // A state still waiting for the tick must not come back after its removal.
            self.pending_presence.remove(id);
        }
        match self.awareness.update_with_clients(ids) {
            Ok(update) => vec![Effect::Broadcast {
                except: None,
                frame: Bytes::from(encode_awareness(update)),
            }],
            Err(_) => Vec::new(),
        }
    }

    /// Removes every connection with a close code (store failure, shutdown, deletion).
    pub fn close_all(&mut self, code: CloseCode, reason: &str) -> Vec<Effect> {
        let out = self
            .members
            .keys()
            .map(|c| Effect::Close {
                conn: *c,
                code,
                reason: reason.to_owned(),
            })
            .collect();
        self.members.clear();
        self.awareness_owner.clear();
        self.pending_presence.clear();
        out
    }

    /// Removes every connection of one participant (the facilitator removed them): their
    /// presence goes for everyone, and each connection is closed with `code`.
    pub fn close_owner(&mut self, owner: &Owner, code: CloseCode, reason: &str) -> Vec<Effect> {
        let conns: Vec<ConnId> = self
            .members
            .iter()
            .filter(|(_, m)| &m.info.owner == owner)
            .map(|(c, _)| *c)
            .collect();
        let mut out = Vec::new();
        for conn in conns {
            out.extend(self.leave(conn));
            out.push(Effect::Close {
                conn,
                code,
                reason: reason.to_owned(),
            });
        }
        out
    }

    /// Sync step 1 from a connection: sync step 2 with what it lacks.
    pub fn sync_step1(&mut self, conn: ConnId, sv: &StateVector) -> Vec<Effect> {
        let frame = if sv.is_empty() {
            match &self.full_state_frame {
                Some(f) => f.clone(),
                None => {
                    let f = self.encode_step2(sv);
                    self.full_state_frame = Some(f.clone());
                    f
                }
            }
        } else {
            self.encode_step2(sv)
        };
        vec![Effect::Send { to: conn, frame }]
    }

    fn encode_step2(&self, sv: &StateVector) -> Bytes {
        Bytes::from(encode_sync_step2(self.doc().transact().encode_diff_v1(sv)))
    }

    /// An update (sync step 2 or update message) from a connection: judged struct by struct,
    /// applied once if accepted, then to be stored and forwarded.
    pub fn update(&mut self, conn: ConnId, raw: Vec<u8>, rules: &Rules<'_>) -> Vec<Effect> {
        let Some(info) = self.members.get(&conn).map(|m| m.info.clone()) else {
            return Vec::new();
        };
        let accepted = match self.judge(&info, &raw, rules) {
            Ok(a) => a,
            Err(Rejection::Refused(r)) => {
                let reason = r.to_string();
                return vec![
                    Effect::Send {
                        to: conn,
                        frame: Bytes::from(encode_permission_denied(&reason)),
                    },
                    Effect::Refused { conn, reason },
                ];
            }
            Err(Rejection::Malformed(e)) => {
                return self.close(
                    conn,
                    CloseCode::MalformedMessage,
                    format!("malformed update: {e}"),
                )
            }
        };
        if accepted.resolved.is_empty() {
            // Nothing the server does not hold already: nothing to store or forward.
            return Vec::new();
        }
        let update = match decode_update(&raw) {
            Ok(u) => u,
            Err(e) => {
                return self.close(
                    conn,
                    CloseCode::MalformedMessage,
                    format!("malformed update: {e}"),
                )
            }
        };
        let doc = self.awareness.doc();
        let removed: Vec<RemovedItem> = match judge::schema(self.name, 0).items_root {
            Some(root) if !accepted.removed.is_empty() => {
                let txn = doc.transact();
                accepted
                    .removed
                    .iter()
                    .filter_map(|k| read_removed(&txn, root, k))
                    .collect()
            }
            _ => Vec::new(),
        };
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut txn = doc.transact_mut();
            txn.apply_update(update).map(|()| txn.delete_set().clone())
        }));
        match applied {
            Ok(Ok(deleted)) => {
                self.full_state_frame = None;
                self.index
                    .apply(accepted.resolved, Some(&info.owner), &deleted);
                let entry = Bytes::from(stored::encode_entry(&info.owner, &raw));
                self.doc_bytes += entry.len() as u64;
                let mut out = vec![Effect::Store {
                    entry,
                    frame: Bytes::from(encode_update(raw)),
                    except: Some(conn),
                }];
                if !accepted.created.is_empty() {
                    out.push(Effect::Created {
                        by: conn,
                        items: accepted.created,
                    });
                }
                if !removed.is_empty() {
                    out.push(Effect::Removed {
                        by: conn,
                        items: removed,
                    });
                }
                out
            }
            // Judged but not appliable: yrs checks before it integrates anything.
            Ok(Err(e)) => self.close(
                conn,
                CloseCode::MalformedMessage,
                format!("update cannot be applied: {e}"),
            ),
            Err(_) => {
                // yrs panicked half-way: the in-memory document can no longer be trusted.
                let mut out =
                    self.close_all(CloseCode::InternalError, "document reloaded; reconnect");
                out.push(Effect::Reload);
                out
            }
        }
    }

    fn close(&mut self, conn: ConnId, code: CloseCode, reason: String) -> Vec<Effect> {
        let mut out = vec![Effect::Close { conn, code, reason }];
        out.extend(self.leave(conn));
        out
    }

    fn judge(
        &self,
        info: &MemberInfo,
        raw: &[u8],
        rules: &Rules<'_>,
    ) -> Result<Accepted, Rejection> {
        let writer = Writer {
            role: info.role,
            owner: info.owner.clone(),
            can_write: info.can_write,
            owns_tag: rules.owns_tag,
        };
        let txn = self.doc().transact();
        let view = YrsView { txn: &txn };
        let ctx = Context {
            doc: self.name,
            index: &self.index,
            view: &view,
            template: rules.template,
            session: rules.session,
            limits: self.limits,
            doc_bytes: self.doc_bytes,
        };
        judge::judge(&ctx, &writer, raw)
    }

    /// A change made by the server itself, in one transaction; recorded in the index under the
    /// server's ownership and returned as an effect to store and send to everyone.
    pub fn server_edit<T>(
        &mut self,
        edit: impl FnOnce(&mut TransactionMut) -> T,
    ) -> (T, Vec<Effect>) {
        let (value, update, deleted) = {
            let mut txn = self.awareness.doc().transact_mut();
            let value = edit(&mut txn);
            let deleted: IdSet = txn.delete_set().clone();
            (value, txn.encode_update_v1(), deleted)
        };
        match judge::resolve_trusted(self.name, &update, &self.index, &self.limits) {
            Ok(r) if r.is_empty() && deleted.is_empty() => return (value, Vec::new()),
            Ok(r) => self.index.apply(r, Some(&Owner::Server), &deleted),
            // Still stored and sent: the document already holds it.
            Err(_) => {}
        }
        self.full_state_frame = None;
        let entry = Bytes::from(stored::encode_entry(&Owner::Server, &update));
        self.doc_bytes += entry.len() as u64;
        let effect = Effect::Store {
            entry,
            frame: Bytes::from(encode_update(update)),
            except: None,
        };
        (value, vec![effect])
    }

    /// Presence. An entry is kept only for an awareness id the sender's participant owns (or
    /// claims now, being the first to announce it); others are dropped silently (the npm
    /// client re-sends everyone's states it receives). A newer connection of the owner takes
    /// the id over at once. Employees' states are rebuilt from a whitelist.
    /// Presence relayed at once: [`DocCore::presence`] then [`DocCore::flush_presence`].
    pub fn awareness(&mut self, conn: ConnId, update: AwarenessUpdate) -> Vec<Effect> {
        let mut out = self.presence(conn, update);
        out.extend(self.flush_presence());
        out
    }

    /// Whether presence is waiting for [`DocCore::flush_presence`].
    pub fn presence_pending(&self) -> bool {
        !self.pending_presence.is_empty()
    }

    /// Everything accepted since the last call, as one message per recipient: the same shared
    /// frame for everyone who sent nothing, and for each sender a frame without its own states
    /// (none when it was the only sender). The host calls it on a short tick, so 500 people's
    /// presence at 1 Hz is a few messages per tick, not one per state per recipient.
    pub fn flush_presence(&mut self) -> Vec<Effect> {
        if self.pending_presence.is_empty() {
            return Vec::new();
        }
        let pending = std::mem::take(&mut self.pending_presence);
        let mut senders: Vec<ConnId> = pending.values().map(|(c, _)| *c).collect();
        senders.sort_unstable();
        senders.dedup();
        let encode = |skip: Option<ConnId>| {
            let clients = pending
                .iter()
                .filter(|(_, (c, _))| Some(*c) != skip)
                .map(|(id, (_, e))| (*id, e.clone()))
                .collect();
            Bytes::from(encode_awareness(AwarenessUpdate { clients }))
        };
        let all = encode(None);
        if let [only] = senders[..] {
            return vec![Effect::Broadcast {
                except: Some(only),
                frame: all,
            }];
        }
        let mut out: Vec<Effect> = senders
            .iter()
            .filter(|c| self.members.contains_key(c))
            .map(|c| Effect::Send {
                to: *c,
                frame: encode(Some(*c)),
            })
            .collect();
        out.push(Effect::BroadcastExcept {
            except: senders,
            frame: all,
        });
        out
    }

    /// Presence, buffered until [`DocCore::flush_presence`]. An entry is kept only for an
    /// awareness id the sender's participant owns (or claims now, being the first to announce
    /// it); others are dropped silently (the npm client re-sends everyone's states it
    /// receives), and so is an entry of the id's current connection whose clock is not newer
    /// than the state shown (a renewal already relayed). A newer connection of the owner takes
    /// the id over at once. Employees' states are rebuilt from a whitelist.
    pub fn presence(&mut self, conn: ConnId, mut update: AwarenessUpdate) -> Vec<Effect> {
        let Some(info) = self.members.get(&conn).map(|m| m.info.clone()) else {
            return Vec::new();
        };
        // A connection shows at most a few presence ids (one per Y.Doc it syncs); more would
        // only grow the index's claims.
        let mine: Vec<ClientID> = self
            .members
            .get(&conn)
            .map(|m| m.awareness_ids.keys().copied().collect())
            .unwrap_or_default();
        // Stale clocks first, before any other work: the id's current connection re-sending a
        // state it already showed (its own, echoed back by the npm client's re-send).
        if let Some(m) = self.members.get(&conn) {
            let (owners, shown) = (&self.awareness_owner, &self.awareness);
            update.clients.retain(|real, e| {
                owners.get(real) != Some(&conn)
                    || m.awareness_ids
                        .get(real)
                        .and_then(|relayed| shown.meta(*relayed))
                        .is_none_or(|(clock, _)| e.clock > clock)
            });
        }
        let mut room = MAX_PRESENCE_IDS.saturating_sub(mine.len());
        let index = &mut self.index;
        update.clients.retain(|id, _| {
            let known = mine.contains(id);
            if !known && room == 0 {
                return false;
            }
            let ok = index.claim_presence(id.get(), &info.owner);
            if ok && !known {
                room -= 1;
            }
            ok
        });
        if update.clients.is_empty() {
            return Vec::new();
        }
        let employee = info.role == Role::Employee;
        let mut out = Vec::new();
        let mut relayed = AwarenessUpdate {
            clients: Default::default(),
        };
        for (real, mut entry) in std::mem::take(&mut update.clients) {
            if employee {
                let txn = self.doc().transact();
                let items = match self.name {
                    DocName::Gap => txn.get_map("rows"),
                    DocName::Control => None,
                    _ => txn.get_map("cards"),
                };
                let is_item = |id: &str| items.as_ref().is_some_and(|m| m.contains_key(&txn, id));
                entry.json = scrub_employee_awareness(&entry.json, &info.display, &is_item).into();
            }
            // A newer connection of the same participant takes the id over at once; the state
            // the older one showed (under its own alias) goes.
            if let Some(prev) = self.awareness_owner.insert(real, conn) {
                if prev != conn {
                    let old = self
                        .members
                        .get_mut(&prev)
                        .and_then(|m| m.awareness_ids.remove(&real));
                    let id = if employee {
                        self.alias(conn, real)
                    } else {
                        real
                    };
                    if let Some(old) = old.filter(|o| *o != id) {
                        out.extend(self.remove_presence(vec![old]));
                    }
                }
            }
            let id = if employee {
                self.alias(conn, real)
            } else {
                real
            };
            if let Some(m) = self.members.get_mut(&conn) {
                m.awareness_ids.insert(real, id);
            }
            relayed.clients.insert(id, entry);
        }
        for (id, entry) in &relayed.clients {
            self.pending_presence.insert(*id, (conn, entry.clone()));
        }
        let _ = self.awareness.apply_update(relayed);
        out
    }

    /// An entry of the shared log that another node judged and stored: applied, recorded in
    /// the index under its writer (as loading would), and sent to every member. It is stored
    /// already, so it is sent at once.
    pub fn apply_logged(&mut self, entry: &[u8]) -> Result<Vec<Effect>, String> {
        let (writer, update) = stored::decode_entry(entry);
        replay(
            self.awareness.doc(),
            &mut self.index,
            self.name,
            &self.limits,
            writer.as_ref(),
            update,
        )?;
        self.full_state_frame = None;
        self.doc_bytes += entry.len() as u64;
        Ok(vec![Effect::Broadcast {
            except: None,
            frame: Bytes::from(encode_update(update.to_vec())),
        }])
    }

    /// Replaces the document and the index by a fresh load. The host calls it when the shared
    /// log moved under updates it had applied but not stored: it reloads what is stored and
    /// judges its pending updates again. Members, their presence and their presence claims stay.
    pub fn rebuild(&mut self, stored_doc: Stored<'_>) -> Vec<String> {
        let (mut fresh, errors) = DocCore::load(self.name, self.limits, stored_doc);
        if let Ok(states) = self.awareness.update() {
            let _ = fresh.awareness.apply_update(states);
        }
        fresh.alias_seed = self.alias_seed;
        fresh.members = std::mem::take(&mut self.members);
        fresh.awareness_owner = std::mem::take(&mut self.awareness_owner);
        for m in fresh.members.values() {
            for real in m.awareness_ids.keys() {
                fresh.index.claim_presence(real.get(), &m.info.owner);
            }
        }
        *self = fresh;
        errors
    }

    /// The presence this node's members show (as relayed: employees under their aliases), for
    /// the other nodes.
    pub fn local_presence(&self) -> AwarenessUpdate {
        let shown: std::collections::HashSet<ClientID> = self
            .awareness
            .iter()
            .filter(|(_, st)| st.data.is_some())
            .map(|(c, _)| c)
            .collect();
        let ids: Vec<ClientID> = self
            .members
            .values()
            .flat_map(|m| m.awareness_ids.values().copied())
            .filter(|id| shown.contains(id))
            .collect();
        self.awareness
            .update_with_clients(ids)
            .unwrap_or(AwarenessUpdate {
                clients: Default::default(),
            })
    }

    /// Presence shown on another node (relayed there already, so nothing is scrubbed here):
    /// kept for joins and queries, and what changed is sent to every member. An id a member
    /// of this node shows is left alone.
    pub fn remote_presence(&mut self, mut update: AwarenessUpdate) -> Vec<Effect> {
        let local: std::collections::HashSet<ClientID> = self
            .members
            .values()
            .flat_map(|m| m.awareness_ids.values().copied())
            .collect();
        update.clients.retain(|id, _| !local.contains(id));
        let changed = match self.awareness.apply_update_summary(update) {
            Ok(Some(summary)) => summary.all_changes(),
            _ => Vec::new(),
        };
        if changed.is_empty() {
            return Vec::new();
        }
        match self.awareness.update_with_clients(changed) {
            Ok(u) => vec![Effect::Broadcast {
                except: None,
                frame: Bytes::from(encode_awareness(u)),
            }],
            Err(_) => Vec::new(),
        }
    }

    /// Removes presence another node showed (it left there, or the node stopped answering).
    pub fn drop_remote_presence(&mut self, ids: Vec<ClientID>) -> Vec<Effect> {
        let local: std::collections::HashSet<ClientID> = self
            .members
            .values()
            .flat_map(|m| m.awareness_ids.values().copied())
            .collect();
        let ids = ids
            .into_iter()
            .filter(|id| !local.contains(id) && self.awareness.meta(*id).is_some())
            .collect();
        self.remove_presence(ids)
    }

    /// Every current presence state, for an awareness query.
    pub fn awareness_query(&self, conn: ConnId) -> Vec<Effect> {
        match self.awareness.update() {
            Ok(update) => vec![Effect::Send {
                to: conn,
                frame: Bytes::from(encode_awareness(update)),
            }],
            Err(_) => Vec::new(),
        }
    }

    /// The full state with the index at that state, to replace the stored snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        let state = self
            .doc()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        stored::encode_snapshot(&self.index.to_bytes(), &state)
    }

    /// After a compaction: the stored document is now this big.
    pub fn compacted(&mut self, snapshot_bytes: u64) {
        self.doc_bytes = snapshot_bytes;
    }

    /// The document as JSON, root by root (see `export_json`).
    pub fn export(&self) -> serde_json::Value {
        export_json(self.doc(), &self.index, self.limits.max_depth)
    }
}

/// Applies stored bytes to `doc` and extends the index with them (as written by `writer`).
fn replay(
    doc: &Doc,
    index: &mut Index,
    name: DocName,
    limits: &Limits,
    writer: Option<&Owner>,
    update: &[u8],
) -> Result<(), String> {
    let decoded = decode_update(update).map_err(|e| e.to_string())?;
    let schema = judge::schema(name, limits.max_depth);
    let creator = writer.filter(|w| **w != Owner::Server);
    let resolved = structs::decode(update)
        .map_err(|e| e.to_string())
        .and_then(|w| {
            index
                .resolve(&w, &schema, creator)
                .map_err(|e| e.to_string())
        });
    let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut txn = doc.transact_mut();
        txn.apply_update(decoded).map(|()| txn.delete_set().clone())
    }));
    let deleted = match applied {
        Ok(Ok(ds)) => ds,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("applying it panicked".into()),
    };
    // A stored update outside the index (written before a rule existed) keeps its ranges
    // unowned; the document still holds it.
    if let Ok(r) = resolved {
        index.apply(r, writer, &deleted);
    }
    Ok(())
}

/// The document as JSON, root by root. Roots are read as the index knows them (maps, or
/// lists and texts); the walk is iterative and stops at `max_depth` levels, so no content can
/// make it recurse without bound.
pub fn export_json(doc: &Doc, index: &Index, max_depth: u16) -> serde_json::Value {
    let txn = doc.transact();
    let names: Vec<String> = txn.root_refs().map(|(n, _)| n.to_owned()).collect();
    let mut out = serde_json::Map::new();
    for name in names {
        let shape = index.root(&name).map(|n| n.shape).unwrap_or(Shape::Map);
        let value = match shape {
            Shape::Seq => match txn.get_text(name.as_str()) {
                Some(t) if t.len(&txn) > 0 => serde_json::Value::String(t.get_string(&txn)),
                _ => match txn.get_array(name.as_str()) {
                    Some(a) => out_json(&txn, Out::YArray(a), max_depth),
                    None => serde_json::Value::Null,
                },
            },
            _ => match txn.get_map(name.as_str()) {
                Some(m) => out_json(&txn, Out::YMap(m), max_depth),
                None => serde_json::Value::Null,
            },
        };
        out.insert(name, value);
    }
    serde_json::Value::Object(out)
}

/// A shared value as JSON, without recursion: an explicit stack, and `null` below `max_depth`.
pub fn out_json<T: ReadTxn>(txn: &T, root: Out, max_depth: u16) -> serde_json::Value {
    // Work items: a value to convert (with its depth), or the end of a map or list whose
    // converted children are the last `n` results.
    enum Work {
        Value(Out, usize),
        EndMap(usize),
        EndList(usize),
    }
    let mut results: Vec<serde_json::Value> = Vec::new();
    let mut work = vec![Work::Value(root, 0)];
    let mut pending_keys: Vec<Vec<String>> = Vec::new();
    while let Some(w) = work.pop() {
        match w {
            Work::Value(v, depth) => match v {
                Out::Any(a) => results.push(any_json(&a)),
                Out::YText(t) => results.push(serde_json::Value::String(t.get_string(txn))),
                Out::YMap(m) if depth < max_depth as usize => {
                    let entries: Vec<(String, Out)> =
                        m.iter(txn).map(|(k, v)| (k.to_owned(), v)).collect();
                    pending_keys.push(entries.iter().map(|(k, _)| k.clone()).collect());
                    work.push(Work::EndMap(entries.len()));
                    for (_, v) in entries.into_iter().rev() {
                        work.push(Work::Value(v, depth + 1));
                    }
                }
                Out::YArray(a) if depth < max_depth as usize => {
                    let items: Vec<Out> = a.iter(txn).collect();
                    work.push(Work::EndList(items.len()));
                    for v in items.into_iter().rev() {
                        work.push(Work::Value(v, depth + 1));
                    }
                }
                _ => results.push(serde_json::Value::Null),
            },
            Work::EndMap(n) => {
                let values = results.split_off(results.len().saturating_sub(n));
                let keys = pending_keys.pop().unwrap_or_default();
                results.push(serde_json::Value::Object(
                    keys.into_iter().zip(values).collect(),
                ));
            }
            Work::EndList(n) => {
                let values = results.split_off(results.len().saturating_sub(n));
                results.push(serde_json::Value::Array(values));
            }
        }
    }
    results.pop().unwrap_or(serde_json::Value::Null)
}

/// Plain values are at most `structs::MAX_VALUE_DEPTH` deep (the judge refuses deeper ones).
fn any_json(a: &Any) -> serde_json::Value {
    serde_json::to_value(a).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::Party;
    use yrs::sync::awareness::AwarenessUpdateEntry;
    use yrs::{Doc, MapPrelim, ReadTxn, Text, TextPrelim, Transact, WriteTxn};

    fn template() -> Template {
        Template::from_json(include_str!(
            "../../server/templates/cao-di-organisatie.json"
        ))
        .unwrap()
    }

    fn member(role: Role, tag: &str, can_write: bool) -> MemberInfo {
        MemberInfo {
            role,
            owner: Owner::Participant(tag.into()),
            display: "Medewerker 1".into(),
            can_write,
        }
    }

    fn core(name: DocName) -> DocCore {
        DocCore::load(
            name,
            Limits::default(),
            Stored {
                snapshot: None,
                log: Vec::new(),
            },
        )
        .0
    }

    fn update(
        core: &mut DocCore,
        conn: ConnId,
        bytes: Vec<u8>,
        session: &SessionPolicy,
    ) -> Vec<Effect> {
        let t = template();
        let no = |_: &str, _: &str| false;
        let rules = Rules {
            template: &t,
            session,
            owns_tag: &no,
        };
        core.update(conn, bytes, &rules)
    }

    fn card_update(client: u64, key: &str, section: &str) -> Vec<u8> {
        let d = Doc::with_client_id(client);
        let cards = d.get_or_insert_map("cards");
        {
            let mut txn = d.transact_mut();
            let c = cards.insert(&mut txn, key, MapPrelim::default());
            c.insert(&mut txn, "section", section);
            c.insert(&mut txn, "text", TextPrelim::new("hallo"));
        }
        let bytes = d
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        bytes
    }

    fn presence(client: u64, clock: u32, json: &str) -> AwarenessUpdate {
        AwarenessUpdate {
            clients: [(
                ClientID::new(client),
                AwarenessUpdateEntry {
                    clock,
                    json: json.into(),
                },
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn an_accepted_update_is_stored_before_it_is_sent_and_a_refusal_touches_nothing() {
        let mut c = core(DocName::Canvas);
        let join = c.join(1, member(Role::Employee, "e", true));
        assert!(matches!(join[0], Effect::Send { to: 1, .. }));
        c.join(2, member(Role::Observer, "o", false));
        let effects = update(
            &mut c,
            1,
            card_update(10, "k", "themas"),
            &SessionPolicy::default(),
        );
        // The only way out for an accepted update is a Store, whose frame goes to the others.
        assert!(matches!(
            &effects[0],
            Effect::Store {
                except: Some(1),
                ..
            }
        ));
        assert!(
            matches!(&effects[1], Effect::Created { by: 1, items } if items == &["k".to_string()])
        );
        assert!(!effects
            .iter()
            .any(|e| matches!(e, Effect::Send { to: 2, .. } | Effect::Broadcast { .. })));
        let before = c.snapshot();
        let refused = update(
            &mut c,
            2,
            card_update(20, "o", "themas"),
            &SessionPolicy::default(),
        );
        assert!(matches!(&refused[0], Effect::Send { to: 2, .. }));
        assert!(
            matches!(&refused[1], Effect::Refused { conn: 2, reason } if reason.starts_with("read-only: "))
        );
        assert_eq!(refused.len(), 2);
        assert_eq!(before, c.snapshot());
        // Garbage closes the sender (1007) and nothing else.
        let bad = update(&mut c, 1, vec![1, 1, 0xff], &SessionPolicy::default());
        assert!(matches!(
            &bad[0],
            Effect::Close {
                conn: 1,
                code: CloseCode::MalformedMessage,
                ..
            }
        ));
        assert_eq!(before, c.snapshot());
    }

    /// Two nodes' cores on one log: an entry judged on node A is applied on node B under its
    /// writer (B then refuses another participant's write under that client id) and sent to
    /// B's members; a rebuild from the stored entries keeps B's members and their presence.
    #[test]
    fn a_logged_entry_from_another_node_is_applied_and_a_rebuild_keeps_members() {
        let session = SessionPolicy::default();
        let mut a = core(DocName::Canvas);
        let mut b = core(DocName::Canvas);
        a.join(1, member(Role::Employer, "w", true));
        b.join(7, member(Role::Union, "u", true));
        let entry = match &update(&mut a, 1, card_update(10, "k", "themas"), &session)[0] {
            Effect::Store { entry, .. } => entry.clone(),
            other => panic!("not stored: {other:?}"),
        };
        let sent = b.apply_logged(&entry).expect("applied");
        assert!(matches!(
            &sent[..],
            [Effect::Broadcast { except: None, .. }]
        ));
        assert_eq!(b.index().owner(10), Some(&Owner::Participant("w".into())));
        // Positive control first: the union member writes under its own client id.
        let own = update(&mut b, 7, card_update(11, "u1", "themas"), &session);
        assert!(matches!(&own[0], Effect::Store { .. }), "{own:?}");
        // Under the employer's client id (new clocks): refused on B too.
        let d = Doc::with_client_id(10);
        d.transact_mut()
            .apply_update(decode_update(&card_update(10, "k", "themas")).unwrap())
            .unwrap();
        let before = d.transact().state_vector();
        d.get_or_insert_text("x")
            .push(&mut d.transact_mut(), "squat");
        let squat = d.transact().encode_diff_v1(&before);
        let refused = update(&mut b, 7, squat, &session);
        assert!(
            refused.iter().any(|e| matches!(e, Effect::Refused { .. })),
            "{refused:?}"
        );
        // Rebuild from the log (as after a moved append): members and presence stay.
        assert!(!b
            .awareness(7, presence(11, 1, r#"{"user":{"name":"U"}}"#))
            .is_empty());
        let errors = b.rebuild(Stored {
            snapshot: None,
            log: vec![&entry[..]],
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(b.members().collect::<Vec<_>>(), vec![7]);
        assert_eq!(b.local_presence().clients.len(), 1);
        assert_eq!(b.index().owner(10), Some(&Owner::Participant("w".into())));
        // The union member's unstored card is gone from the rebuilt document.
        let cards = b.export()["cards"].clone();
        assert!(
            cards.get("k").is_some() && cards.get("u1").is_none(),
            "{cards}"
        );
    }

    /// Presence from another node is shown to members here (and in later joins), and removed
    /// when that node says so; an id a local member shows is never overridden.
    #[test]
    fn remote_presence_is_shown_and_removed_but_never_overrides_a_local_one() {
        let mut c = core(DocName::Canvas);
        c.join(1, member(Role::Employer, "w", true));
        c.awareness(1, presence(5, 1, r#"{"user":{"name":"lokaal"}}"#));
        let shown = c.remote_presence(presence(9, 1, r#"{"user":{"name":"elders"}}"#));
        assert!(matches!(
            &shown[..],
            [Effect::Broadcast { except: None, .. }]
        ));
        // Sent again unchanged: nothing to send.
        assert!(c
            .remote_presence(presence(9, 1, r#"{"user":{"name":"elders"}}"#))
            .is_empty());
        // Another node cannot override the local member's id.
        assert!(c
            .remote_presence(presence(5, 9, r#"{"user":{"name":"vals"}}"#))
            .is_empty());
        assert!(c.drop_remote_presence(vec![ClientID::new(5)]).is_empty());
        // Only the local member's presence is this node's to publish.
        let local = c.local_presence();
        assert_eq!(
            local.clients.keys().copied().collect::<Vec<_>>(),
            vec![ClientID::new(5)]
        );
        assert!(!c.drop_remote_presence(vec![ClientID::new(9)]).is_empty());
    }

    #[test]
    fn an_id_seen_in_someones_presence_cannot_be_written_under_by_another() {
        let mut c = core(DocName::Canvas);
        c.join(1, member(Role::Employer, "w", true));
        c.join(2, member(Role::Union, "u", true));
        assert!(!c
            .awareness(1, presence(555, 1, r#"{"user":{"name":"Erik"}}"#))
            .is_empty());
        let refused = update(
            &mut c,
            2,
            card_update(555, "k", "bouwstenen"),
            &SessionPolicy::default(),
        );
        assert!(
            matches!(&refused[1], Effect::Refused { reason, .. } if reason.starts_with("foreign-client-id: ")),
            "{refused:?}"
        );
        // Its presence owner writes under it.
        let ok = update(
            &mut c,
            1,
            card_update(555, "k", "bouwstenen"),
            &SessionPolicy::default(),
        );
        assert!(matches!(&ok[0], Effect::Store { .. }), "{ok:?}");
    }

    #[test]
    fn a_connection_claims_only_a_few_presence_ids() {
        let mut c = core(DocName::Canvas);
        c.join(1, member(Role::Employer, "w", true));
        let mut shown = 0;
        for id in 0..20u64 {
            if !c
                .awareness(1, presence(1000 + id, 1, r#"{"user":{"name":"x"}}"#))
                .is_empty()
            {
                shown += 1;
            }
        }
        assert_eq!(shown, MAX_PRESENCE_IDS);
        // Its own ids keep working.
        assert!(!c
            .awareness(1, presence(1000, 2, r#"{"user":{"name":"y"}}"#))
            .is_empty());
    }

    #[test]
    fn the_empty_awareness_ack_is_what_yrs_encodes() {
        let empty = AwarenessUpdate {
            clients: Default::default(),
        };
        assert_eq!(encode_awareness(empty), EMPTY_AWARENESS);
    }

    #[test]
    fn sync_step2_is_encoded_once_and_shared() {
        let mut c = core(DocName::Canvas);
        c.join(1, member(Role::Employee, "e", true));
        c.join(2, member(Role::Employee, "f", true));
        let a = c.sync_step1(1, &StateVector::default());
        let b = c.sync_step1(2, &StateVector::default());
        match (&a[0], &b[0]) {
            (Effect::Send { frame: fa, .. }, Effect::Send { frame: fb, .. }) => {
                assert_eq!(fa.as_ptr(), fb.as_ptr(), "one encoding, shared")
            }
            _ => panic!("{a:?} {b:?}"),
        }
    }

    #[test]
    fn presence_belongs_to_its_participant_and_a_reconnect_takes_it_back() {
        let mut c = core(DocName::Party(Party::Employee));
        c.join(1, member(Role::Employee, "e", true));
        c.join(2, member(Role::Employee, "other", true));
        assert_eq!(c.awareness(1, presence(77, 1, r#"{"hand":true}"#)).len(), 1);
        // Another participant cannot overwrite or remove it: dropped silently.
        assert!(c
            .awareness(2, presence(77, 2, r#"{"hand":false}"#))
            .is_empty());
        assert!(c.awareness(2, presence(77, 3, "null")).is_empty());
        // The same participant on a new connection (a reconnect) takes it over at once: the
        // old connection's entry goes, the new one shows.
        c.join(3, member(Role::Employee, "e", true));
        let took = c.awareness(3, presence(77, 1, r#"{"hand":true}"#));
        assert_eq!(took.len(), 2, "removal, state: {took:?}");
        // ...and the old connection leaving does not remove it.
        assert!(c.leave(1).is_empty());
        // While the owner is away, nobody else may set a state on the id.
        assert!(!c.leave(3).is_empty());
        assert!(c
            .awareness(2, presence(77, 9, r#"{"user":{"name":"Echte Naam"}}"#))
            .is_empty());
        // An employee's state is rebuilt from the whitelist with the pseudonym.
        c.join(4, member(Role::Employee, "e", true));
        match &c.awareness(
            4,
            presence(77, 10, r#"{"user":{"name":"Echte Naam"},"hand":true}"#),
        )[0]
        {
            Effect::Broadcast { frame, .. } => {
                let text = String::from_utf8_lossy(frame);
                assert!(
                    text.contains("Medewerker 1") && !text.contains("Echte Naam"),
                    "{text}"
                );
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn an_employees_presence_is_relayed_under_an_alias_per_connection() {
        let mut c = core(DocName::Canvas);
        c.set_alias_seed(42);
        c.join(1, member(Role::Employee, "e", true));
        c.join(2, member(Role::Employer, "w", true));
        let relayed_ids = |effects: Vec<Effect>| -> Vec<u64> {
            effects
                .into_iter()
                .filter_map(|e| match e {
                    Effect::Broadcast { frame, .. } => {
                        let msg = crate::wire::decode_frame(&frame).ok()?;
                        match msg {
                            yrs::sync::Message::Awareness(u) => {
                                Some(u.clients.keys().map(|k| k.get()).collect::<Vec<_>>())
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                })
                .flatten()
                .collect()
        };
        let first = relayed_ids(c.awareness(1, presence(77, 1, r#"{"hand":true}"#)));
        assert_eq!(first.len(), 1);
        assert_ne!(
            first[0], 77,
            "an employee's client id must not reach others"
        );
        // Another connection of the same person: another alias, so sessions do not link either.
        c.leave(1);
        c.join(3, member(Role::Employee, "e", true));
        let second = relayed_ids(c.awareness(3, presence(77, 2, r#"{"hand":true}"#)));
        assert!(
            second.iter().all(|id| *id != 77 && *id != first[0]),
            "{second:?}"
        );
        // Other roles are relayed under their own id.
        assert_eq!(
            relayed_ids(c.awareness(2, presence(88, 1, r#"{"user":{"name":"Erik"}}"#))),
            vec![88]
        );
        // `editing` must name an existing card.
        let frames = c.awareness(3, presence(77, 3, r#"{"editing":"Jan de Vries"}"#));
        assert!(frames.iter().all(|e| !format!("{e:?}").contains("Jan")));
    }

    #[test]
    fn the_index_comes_back_identically_from_snapshot_and_log() {
        let mut c = core(DocName::Canvas);
        c.join(1, member(Role::Employee, "e", true));
        let Effect::Store { entry, .. } = update(
            &mut c,
            1,
            card_update(10, "k", "themas"),
            &SessionPolicy::default(),
        )
        .remove(0) else {
            panic!("not stored")
        };
        let (from_log, errors) = DocCore::load(
            DocName::Canvas,
            Limits::default(),
            Stored {
                snapshot: None,
                log: vec![&entry[..]],
            },
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(from_log.index().owner(10), c.index().owner(10));
        let snap = c.snapshot();
        let (from_snap, errors) = DocCore::load(
            DocName::Canvas,
            Limits::default(),
            Stored {
                snapshot: Some(&snap),
                log: Vec::new(),
            },
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            from_snap.index().owner(10),
            Some(&Owner::Participant("e".into()))
        );
        // Another participant is still refused under that client id after the reload.
        let mut c2 = from_snap;
        c2.join(5, member(Role::Employer, "w", true));
        // The squatter reads the document (so its struct starts at the victim's next clock).
        let d = Doc::with_client_id(10);
        let state = c2
            .doc()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        d.transact_mut()
            .apply_update(decode_update(&state).unwrap())
            .unwrap();
        let sv = d.transact().state_vector();
        let u = {
            let t = d.get_or_insert_text("x");
            t.push(&mut d.transact_mut(), "a");
            let bytes = d.transact().encode_diff_v1(&sv);
            bytes
        };
        let refused = update(&mut c2, 5, u, &SessionPolicy::default());
        assert!(
            matches!(&refused[1], Effect::Refused { reason, .. } if reason.starts_with("foreign-client-id: ")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_stored_update_that_cannot_be_applied_is_skipped() {
        let good = card_update(10, "k", "themas");
        let (c, errors) = DocCore::load(
            DocName::Canvas,
            Limits::default(),
            Stored {
                snapshot: None,
                log: vec![&[1, 2, 3][..], &good[..]],
            },
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            c.export()["cards"]["k"]["text"] == "hallo",
            "{}",
            c.export()
        );
    }

    #[test]
    fn export_is_bounded_and_iterative() {
        let mut c = core(DocName::Party(Party::Employee));
        let (_, _) = c.server_edit(|txn| {
            let m = txn.get_or_insert_map("diep");
            let mut cur = m.insert(txn, "n", MapPrelim::default());
            for _ in 0..5000 {
                cur = cur.insert(txn, "n", MapPrelim::default());
            }
        });
        let json = c.export();
        let mut depth = 0;
        let mut v = &json["diep"];
        while let Some(next) = v.get("n") {
            v = next;
            depth += 1;
        }
        assert!(depth <= Limits::default().max_depth as usize, "{depth}");
    }

    #[test]
    fn close_owner_closes_only_that_participants_connections() {
        let mut c = core(DocName::Canvas);
        c.join(1, member(Role::Employee, "a", true));
        c.join(2, member(Role::Employee, "b", true));
        c.join(3, member(Role::Employee, "a", true));
        let effects = c.close_owner(
            &Owner::Participant("a".into()),
            CloseCode::Removed,
            "removed",
        );
        let mut closed: Vec<ConnId> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Close { conn, code, .. } if *code == CloseCode::Removed => Some(*conn),
                _ => None,
            })
            .collect();
        closed.sort();
        assert_eq!(closed, vec![1, 3]);
        assert_eq!(c.members().collect::<Vec<_>>(), vec![2]);
        assert!(c
            .close_owner(&Owner::Participant("a".into()), CloseCode::Removed, "x")
            .is_empty());
    }

    /// The awareness ids in a frame.
    fn ids_in(frame: &Bytes) -> Vec<u64> {
        match crate::wire::decode_frame(frame) {
            Ok(yrs::sync::Message::Awareness(u)) => {
                let mut ids: Vec<u64> = u.clients.keys().map(|k| k.get()).collect();
                ids.sort_unstable();
                ids
            }
            _ => Vec::new(),
        }
    }

    #[test]
    fn presence_of_one_tick_goes_out_as_one_message_per_recipient_without_the_senders_own() {
        let mut c = core(DocName::Canvas);
        for (conn, tag) in [(1, "a"), (2, "b"), (3, "c")] {
            c.join(conn, member(Role::Employer, tag, true));
        }
        assert!(c.presence(1, presence(11, 1, "{}")).is_empty(), "buffered");
        assert!(c.presence(2, presence(22, 1, "{}")).is_empty(), "buffered");
        assert!(
            c.presence(1, presence(11, 2, "{}")).is_empty(),
            "newest wins"
        );
        assert!(c.presence_pending());
        let effects = c.flush_presence();
        assert!(!c.presence_pending());
        let mut to: Vec<(String, Vec<u64>)> = Vec::new();
        for e in &effects {
            match e {
                Effect::Send { to: t, frame } => to.push((format!("send {t}"), ids_in(frame))),
                Effect::BroadcastExcept { except, frame } => {
                    to.push((format!("all but {except:?}"), ids_in(frame)))
                }
                other => panic!("{other:?}"),
            }
        }
        to.sort();
        assert_eq!(
            to,
            vec![
                ("all but [1, 2]".to_owned(), vec![11, 22]),
                ("send 1".to_owned(), vec![22]),
                ("send 2".to_owned(), vec![11]),
            ]
        );
        // One sender alone: everyone but it, one frame.
        c.presence(3, presence(33, 1, "{}"));
        match &c.flush_presence()[..] {
            [Effect::Broadcast {
                except: Some(3),
                frame,
            }] => assert_eq!(ids_in(frame), vec![33]),
            other => panic!("{other:?}"),
        }
        assert!(c.flush_presence().is_empty(), "nothing pending");
    }

    #[test]
    fn a_state_removed_before_its_tick_is_not_relayed_after_the_removal() {
        let mut c = core(DocName::Canvas);
        c.join(1, member(Role::Employer, "a", true));
        c.join(2, member(Role::Employer, "b", true));
        c.presence(1, presence(11, 1, "{}"));
        let removal = c.leave(1);
        assert_eq!(removal.len(), 1, "the removal goes at once: {removal:?}");
        assert!(
            c.flush_presence().is_empty(),
            "the left state must not come back"
        );
        // Control: without the leave it is relayed.
        c.join(3, member(Role::Employer, "c", true));
        c.presence(3, presence(33, 1, "{}"));
        assert_eq!(c.flush_presence().len(), 1);
    }

    #[test]
    fn a_renewal_echoed_with_the_same_clock_is_dropped_before_any_work() {
        let mut c = core(DocName::Canvas);
        c.join(1, member(Role::Employer, "a", true));
        c.join(2, member(Role::Employer, "b", true));
        assert_eq!(c.awareness(1, presence(11, 5, r#"{"x":1}"#)).len(), 1);
        // The npm client re-sends its own state when it comes back: same clock, nothing new.
        assert!(c.awareness(1, presence(11, 5, r#"{"x":1}"#)).is_empty());
        assert!(
            c.awareness(1, presence(11, 4, r#"{"x":0}"#)).is_empty(),
            "older"
        );
        // A newer clock is a renewal and goes out (clients drop states not renewed in 30 s).
        assert_eq!(c.awareness(1, presence(11, 6, r#"{"x":1}"#)).len(), 1);
        // Another participant re-sending it is dropped too (not theirs).
        assert!(c.awareness(2, presence(11, 7, r#"{"x":2}"#)).is_empty());
    }
}
