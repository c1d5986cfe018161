//! The ownership index of one document: for every Yjs client id, the participant who first
//! wrote under it; for every clock range, where its structs live (the node: a root, an item, an
//! item's text, free-form content) and under which map key; for every nested type, the node it
//! is and who created it; the ranges known to be deleted; and which participant claimed which
//! presence (awareness) id.
//!
//! It is extended by every accepted update and every server edit, in the order they are
//! applied, and stored with each snapshot; each log entry carries its writer, so replaying the
//! log rebuilds it identically. It holds participant *tags* (see `Owner`), never names or
//! token subjects. Resolving an update against it (`Index::resolve`) is pure bookkeeping; what
//! is allowed where is decided by `judge`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use yrs::{ClientID, IdSet, ID};

use crate::structs::{Content, Decoded, Id, Parent, Struct, TypeKind};

/// Who wrote under a client id, or created a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Owner {
    /// The server itself (seeding, stamping, moderation, reveals).
    Server,
    /// A participant, by the board's participant tag (an HMAC; unlinkable across boards).
    Participant(Arc<str>),
}

/// How a node's children are addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Keyed entries (a map).
    Map,
    /// Keyless content (a list or a text).
    Seq,
    /// A root nobody has used yet.
    Unknown,
}

/// What a node is in the board's schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Zone {
    /// A root type.
    Root(Arc<str>),
    /// An item (card, row): the map under `key` of the items root.
    Item { root: Arc<str>, key: Arc<str> },
    /// A shared text in an item's field.
    Field {
        root: Arc<str>,
        key: Arc<str>,
        field: Arc<str>,
    },
    /// Free-form content under a free root (party workspaces), `depth` types below it.
    Free { root: Arc<str>, depth: u16 },
    /// A type nested deeper than the schema allows.
    TooDeep,
    /// A type where the schema names none.
    Outside,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub zone: Zone,
    pub shape: Shape,
    /// The item whose content is this type (None for roots).
    pub id: Option<Id>,
    /// Who created it (None: the server, or before the index existed).
    pub creator: Option<Owner>,
    /// For an item's map and the types in its fields: the id of the item's map.
    #[serde(default)]
    pub item: Option<Id>,
}

/// Which roots are what, for one kind of document (see `judge::schema`).
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The map of items (`cards`, `rows`), if the document has one.
    pub items_root: Option<&'static str>,
    /// Roots that are free-form: every root except these is free when `free` is true.
    pub free: bool,
    pub not_free: &'static [&'static str],
    /// Roots that are maps by definition.
    pub map_roots: &'static [&'static str],
    /// Most levels of nested types under a free root.
    pub max_depth: u16,
}

impl Schema {
    fn is_free(&self, root: &str) -> bool {
        self.free && !self.not_free.contains(&root) && self.items_root != Some(root)
    }

    /// The zone of a type created under `parent` at `key`.
    pub fn child_zone(&self, parent: &Zone, key: Option<&str>, kind: TypeKind) -> Zone {
        match (parent, key) {
            (Zone::Root(r), Some(k)) if self.items_root == Some(r.as_ref()) => {
                if kind == TypeKind::Map {
                    Zone::Item {
                        root: r.clone(),
                        key: k.into(),
                    }
                } else {
                    Zone::Outside
                }
            }
            (Zone::Root(r), _) if self.is_free(r) => Zone::Free {
                root: r.clone(),
                depth: 1,
            },
            (Zone::Item { root, key }, Some(f)) if kind == TypeKind::Text => Zone::Field {
                root: root.clone(),
                key: key.clone(),
                field: f.into(),
            },
            // A shared type embedded in a text is an embed, which card text does not take.
            (Zone::Field { .. }, _) => Zone::Outside,
            (Zone::Item { .. }, _) => Zone::TooDeep,
            (Zone::Free { root, depth }, _) => {
                if *depth >= self.max_depth {
                    Zone::TooDeep
                } else {
                    Zone::Free {
                        root: root.clone(),
                        depth: depth + 1,
                    }
                }
            }
            (Zone::TooDeep, _) => Zone::TooDeep,
            _ => Zone::Outside,
        }
    }
}

/// A node, either already in the index or created by the update being resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRef {
    Old(u32),
    New(u32),
}

/// One clock range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rec {
    len: u32,
    /// The parent node; `None` for content whose place is unknown (GC ranges).
    node: Option<u32>,
    key: Option<Arc<str>>,
    is_type: bool,
}

/// Where one new struct lands.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The struct, trimmed to the part the index does not hold yet.
    pub s: Struct,
    /// `None`: no place (GC), or a place that no longer exists (yrs turns it into GC too).
    pub node: Option<NodeRef>,
    pub key: Option<Arc<str>>,
    /// The node this struct creates, when it is a type.
    pub creates: Option<NodeRef>,
}

/// One piece of a new deletion.
#[derive(Debug, Clone)]
pub struct Deletion {
    pub client: u64,
    pub start: u32,
    pub end: u32,
    pub node: Option<NodeRef>,
    pub key: Option<Arc<str>>,
    /// The node the deleted struct is (when it is a type).
    pub type_node: Option<NodeRef>,
}

/// An update resolved against the index: every new struct and deletion with its place.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub placed: Vec<Placed>,
    pub deletions: Vec<Deletion>,
    pub new_nodes: Vec<Node>,
    /// Client ids the update writes under, with their current owner (None: unowned).
    pub writers: Vec<(u64, Option<Owner>)>,
    /// Roots whose shape this update fixes.
    root_shapes: Vec<(NodeRef, Shape)>,
}

impl Resolved {
    /// Whether the update changes anything at all.
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty() && self.deletions.is_empty()
    }

    /// The shape a node has once this update is applied.
    pub fn shape(&self, index: &Index, n: NodeRef) -> Shape {
        if let Some((_, s)) = self.root_shapes.iter().find(|(r, _)| *r == n) {
            return *s;
        }
        self.node(index, n).shape
    }

    pub fn node<'a>(&'a self, index: &'a Index, n: NodeRef) -> &'a Node {
        match n {
            NodeRef::Old(i) => &index.nodes[i as usize],
            NodeRef::New(i) => &self.new_nodes[i as usize],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("the update builds on changes the server does not have")]
    Missing,
    #[error("an item names a parent that is not a shared type")]
    NotAType,
    #[error("keyed and keyless content mixed in root {0}")]
    MixedRoot(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    nodes: Vec<Node>,
    #[serde(skip)]
    roots: HashMap<Arc<str>, u32>,
    #[serde(skip)]
    types: HashMap<Id, u32>,
    recs: BTreeMap<u64, BTreeMap<u32, Rec>>,
    clients: BTreeMap<u64, Owner>,
    presence: BTreeMap<u64, Owner>,
    #[serde(with = "id_set")]
    deleted: IdSet,
}

mod id_set {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use yrs::{ClientID, IdSet, ID};

    pub fn serialize<S: Serializer>(set: &IdSet, s: S) -> Result<S::Ok, S::Error> {
        let mut out: Vec<(u64, u32, u32)> = Vec::new();
        for (client, ranges) in set.iter() {
            for r in ranges.iter() {
                out.push((client.get(), r.start, r.end));
            }
        }
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IdSet, D::Error> {
        let ranges: Vec<(u64, u32, u32)> = Vec::deserialize(d)?;
        let mut set = IdSet::new();
        for (c, a, b) in ranges {
            if b > a && c < (1 << 53) {
                set.insert(ID::new(ClientID::new(c), a), b - a);
            }
        }
        Ok(set)
    }
}

fn yid(client: u64, clock: u32) -> ID {
    ID::new(ClientID::new(client), clock)
}

enum Slot {
    Pending,
    Done(Option<NodeRef>, Option<Arc<str>>),
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    /// Restores an index stored with `to_bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Index, String> {
        let mut index: Index = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        for (i, n) in index.nodes.iter().enumerate() {
            match (&n.zone, n.id) {
                (Zone::Root(name), None) => {
                    index.roots.insert(name.clone(), i as u32);
                }
                (_, Some(id)) => {
                    index.types.insert(id, i as u32);
                }
                _ => {}
            }
        }
        Ok(index)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The next clock of `client` the index expects (its state-vector entry).
    pub fn clock(&self, client: u64) -> u32 {
        self.recs
            .get(&client)
            .and_then(|r| r.iter().next_back())
            .map(|(s, r)| s + r.len)
            .unwrap_or(0)
    }

    pub fn owner(&self, client: u64) -> Option<&Owner> {
        self.clients.get(&client)
    }

    /// Marks a client id as the server's own (the id its edits are written under).
    pub fn claim_for_server(&mut self, client: u64) {
        self.clients.insert(client, Owner::Server);
    }

    /// The node of a live root, by name.
    pub fn root(&self, name: &str) -> Option<&Node> {
        self.roots.get(name).map(|i| &self.nodes[*i as usize])
    }

    /// The node a type item is.
    pub fn type_node(&self, id: Id) -> Option<&Node> {
        self.types.get(&id).map(|i| &self.nodes[*i as usize])
    }

    /// Presence: whether `owner` may set or remove the awareness state of `client`. The Yjs
    /// client id's writer owns it; otherwise the first participant announcing it claims it.
    pub fn claim_presence(&mut self, client: u64, owner: &Owner) -> bool {
        if let Some(o) = self.clients.get(&client) {
            return o == owner;
        }
        match self.presence.get(&client) {
            Some(o) => o == owner,
            None => {
                self.presence.insert(client, owner.clone());
                true
            }
        }
    }

    fn rec(&self, id: Id) -> Option<(u32, &Rec)> {
        let (start, rec) = self.recs.get(&id.client)?.range(..=id.clock).next_back()?;
        (id.clock < start + rec.len).then_some((*start, rec))
    }

    /// Places every struct and deletion of `update` that the index does not hold yet.
    /// `creator` is who the update's new nodes are recorded as created by.
    pub fn resolve(
        &self,
        update: &Decoded,
        schema: &Schema,
        creator: Option<&Owner>,
    ) -> Result<Resolved, ResolveError> {
        let mut out = Resolved::default();
        // 1. Drop what is held; trim what is partly held; find gaps.
        let mut expected: HashMap<u64, u32> = HashMap::new();
        let mut fresh: Vec<Struct> = Vec::new();
        for s in &update.structs {
            if s.content == Content::Skip {
                continue;
            }
            let exp = *expected
                .entry(s.id.client)
                .or_insert_with(|| self.clock(s.id.client));
            let end = s.id.clock + s.len;
            if s.id.clock > exp {
                return Err(ResolveError::Missing);
            }
            if end <= exp {
                continue;
            }
            let mut t = s.clone();
            if s.id.clock < exp {
                let cut = exp - s.id.clock;
                t.id.clock = exp;
                t.len = s.len - cut;
                // The rest of a split item follows its own first part.
                t.origin = Some(Id::new(s.id.client, exp - 1));
                t.right = s.right;
                t.parent = None;
                t.key = None;
                if let Content::Any(v) = &s.content {
                    t.content = Content::Any(v.iter().skip(cut as usize).cloned().collect());
                }
            }
            expected.insert(s.id.client, end);
            fresh.push(t);
        }
        let mut writers: Vec<u64> = fresh.iter().map(|s| s.id.client).collect();
        writers.sort_unstable();
        writers.dedup();
        // A client id is owned by its first writer, or by the participant who announced it
        // as their presence (so nobody can claim an id they saw in someone's presence).
        out.writers = writers
            .into_iter()
            .map(|c| (c, self.clients.get(&c).or(self.presence.get(&c)).cloned()))
            .collect();

        // 2. Find new structs by id.
        let mut by_client: HashMap<u64, Vec<(u32, u32, usize)>> = HashMap::new();
        for (i, s) in fresh.iter().enumerate() {
            by_client
                .entry(s.id.client)
                .or_default()
                .push((s.id.clock, s.id.clock + s.len, i));
        }
        let find_new = |id: Id| -> Option<usize> {
            let v = by_client.get(&id.client)?;
            let pos = v.partition_point(|(start, _, _)| *start <= id.clock);
            let (start, end, i) = *v.get(pos.checked_sub(1)?)?;
            (id.clock >= start && id.clock < end).then_some(i)
        };

        // 3. Resolve places in dependency order (a worklist, never recursion).
        let mut slots: Vec<Slot> = fresh.iter().map(|_| Slot::Pending).collect();
        let mut creates: Vec<Option<NodeRef>> = vec![None; fresh.len()];
        let mut waiters: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut new_roots: HashMap<Arc<str>, NodeRef> = HashMap::new();
        let mut queue: Vec<usize> = (0..fresh.len()).rev().collect();
        while let Some(i) = queue.pop() {
            if matches!(slots[i], Slot::Done(..)) {
                continue;
            }
            let s = &fresh[i];
            // What this struct's place depends on.
            enum Dep {
                Ready(Option<NodeRef>, Option<Arc<str>>),
                Wait(usize),
            }
            let dep = if s.placeless() {
                Dep::Ready(None, None)
            } else if let Some(parent) = &s.parent {
                match parent {
                    Parent::Root(name) => {
                        let n = match self.roots.get(name) {
                            Some(n) => NodeRef::Old(*n),
                            None => *new_roots.entry(name.clone()).or_insert_with(|| {
                                out.new_nodes.push(Node {
                                    zone: Zone::Root(name.clone()),
                                    shape: if schema.map_roots.contains(&name.as_ref())
                                        || schema.items_root == Some(name.as_ref())
                                    {
                                        Shape::Map
                                    } else {
                                        Shape::Unknown
                                    },
                                    id: None,
                                    creator: None,
                                    item: None,
                                });
                                NodeRef::New(out.new_nodes.len() as u32 - 1)
                            }),
                        };
                        Dep::Ready(Some(n), s.key.clone())
                    }
                    Parent::Type(pid) => {
                        if let Some(n) = self.types.get(pid) {
                            Dep::Ready(Some(NodeRef::Old(*n)), s.key.clone())
                        } else if let Some(j) = find_new(*pid) {
                            match (&slots[j], fresh[j].id == *pid) {
                                (_, false) => return Err(ResolveError::NotAType),
                                (Slot::Done(..), true) => match creates[j] {
                                    Some(n) => Dep::Ready(Some(n), s.key.clone()),
                                    None if fresh[j].placeless() => Dep::Ready(None, None),
                                    None => match &fresh[j].content {
                                        Content::Type(_) | Content::Deleted => {
                                            Dep::Ready(None, None)
                                        }
                                        _ => return Err(ResolveError::NotAType),
                                    },
                                },
                                (Slot::Pending, true) => Dep::Wait(j),
                            }
                        } else if let Some((_, rec)) = self.rec(*pid) {
                            if rec.node.is_none() || rec.is_type {
                                // Known but garbage-collected: yrs drops the struct as well.
                                Dep::Ready(None, None)
                            } else {
                                return Err(ResolveError::NotAType);
                            }
                        } else {
                            return Err(ResolveError::Missing);
                        }
                    }
                }
            } else {
                let Some(o) = s.origin.or(s.right) else {
                    return Err(ResolveError::Missing);
                };
                if let Some((_, rec)) = self.rec(o) {
                    Dep::Ready(rec.node.map(NodeRef::Old), rec.key.clone())
                } else if let Some(j) = find_new(o) {
                    match &slots[j] {
                        Slot::Done(n, k) => Dep::Ready(*n, k.clone()),
                        Slot::Pending => Dep::Wait(j),
                    }
                } else {
                    return Err(ResolveError::Missing);
                }
            };
            match dep {
                Dep::Wait(j) => {
                    waiters.entry(j).or_default().push(i);
                }
                Dep::Ready(node, key) => {
                    if let (Some(n), Content::Type(kind)) = (node, &s.content) {
                        let parent = out.node(self, n);
                        let parent_item = parent.item;
                        let parent_zone = parent.zone.clone();
                        let zone = schema.child_zone(&parent_zone, key.as_deref(), *kind);
                        let item = match zone {
                            Zone::Item { .. } => Some(s.id),
                            Zone::Field { .. } => parent_item,
                            _ => None,
                        };
                        out.new_nodes.push(Node {
                            zone,
                            shape: if *kind == TypeKind::Map {
                                Shape::Map
                            } else {
                                Shape::Seq
                            },
                            id: Some(s.id),
                            creator: creator.cloned(),
                            item,
                        });
                        creates[i] = Some(NodeRef::New(out.new_nodes.len() as u32 - 1));
                    }
                    slots[i] = Slot::Done(node, key);
                    if let Some(w) = waiters.remove(&i) {
                        queue.extend(w);
                    }
                }
            }
        }
        // 4. Roots take the shape of their first use; mixing is refused.
        for (i, slot) in slots.iter().enumerate() {
            let Slot::Done(node, key) = slot else {
                return Err(ResolveError::Missing);
            };
            if let Some(n) = node {
                let node_ref = *n;
                let base = out.node(self, node_ref);
                if let Zone::Root(name) = &base.zone {
                    let want = if key.is_some() {
                        Shape::Map
                    } else {
                        Shape::Seq
                    };
                    let have = out
                        .root_shapes
                        .iter()
                        .find(|(r, _)| *r == node_ref)
                        .map(|(_, s)| *s)
                        .unwrap_or(base.shape);
                    match have {
                        Shape::Unknown => out.root_shapes.push((node_ref, want)),
                        s if s != want => return Err(ResolveError::MixedRoot(name.to_string())),
                        _ => {}
                    }
                }
            }
            let _ = i;
        }
        for ((s, slot), c) in fresh.into_iter().zip(slots).zip(creates) {
            if let Slot::Done(node, key) = slot {
                out.placed.push(Placed {
                    s,
                    node,
                    key,
                    creates: c,
                });
            }
        }

        // 5. Deletions the index does not know yet, split by the places they fall in.
        let mut ds = IdSet::new();
        for (c, a, b) in &update.deletes {
            ds.insert(yid(*c, *a), b - a);
        }
        let ds = ds.diff(&self.deleted);
        for (client, ranges) in ds.iter() {
            let client = client.get();
            for r in ranges.iter() {
                let mut clock = r.start;
                while clock < r.end {
                    let id = Id::new(client, clock);
                    if let Some((start, rec)) = self.rec(id) {
                        let end = (start + rec.len).min(r.end);
                        out.deletions.push(Deletion {
                            client,
                            start: clock,
                            end,
                            node: rec.node.map(NodeRef::Old),
                            key: rec.key.clone(),
                            type_node: if rec.is_type {
                                self.types
                                    .get(&Id::new(client, start))
                                    .map(|n| NodeRef::Old(*n))
                            } else {
                                None
                            },
                        });
                        clock = end;
                    } else if let Some(p) = out.placed.iter().find(|p| {
                        p.s.id.client == client
                            && p.s.id.clock <= clock
                            && clock < p.s.id.clock + p.s.len
                    }) {
                        let end = (p.s.id.clock + p.s.len).min(r.end);
                        out.deletions.push(Deletion {
                            client,
                            start: clock,
                            end,
                            node: p.node,
                            key: p.key.clone(),
                            type_node: p.creates,
                        });
                        clock = end;
                    } else {
                        return Err(ResolveError::Missing);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Extends the index with an applied update. `writer` owns the client ids it wrote under
    /// (unless they are owned already); `deleted` is what applying it deleted (the
    /// transaction's delete set, overwritten map entries included).
    pub fn apply(&mut self, resolved: Resolved, writer: Option<&Owner>, deleted: &IdSet) {
        let base = self.nodes.len() as u32;
        let map = |n: NodeRef| match n {
            NodeRef::Old(i) => i,
            NodeRef::New(i) => base + i,
        };
        for (i, node) in resolved.new_nodes.into_iter().enumerate() {
            let at = base + i as u32;
            match (&node.zone, node.id) {
                (Zone::Root(name), None) => {
                    self.roots.insert(name.clone(), at);
                }
                (_, Some(id)) => {
                    self.types.insert(id, at);
                }
                _ => {}
            }
            self.nodes.push(node);
        }
        for (n, shape) in resolved.root_shapes {
            self.nodes[map(n) as usize].shape = shape;
        }
        if let Some(w) = writer {
            for (client, owner) in &resolved.writers {
                if owner.is_none() {
                    self.clients.insert(*client, w.clone());
                }
            }
        }
        for p in resolved.placed {
            let rec = Rec {
                len: p.s.len,
                node: p.node.map(map),
                key: p.key,
                is_type: p.creates.is_some(),
            };
            let recs = self.recs.entry(p.s.id.client).or_default();
            if let Some((start, last)) = recs.iter_mut().next_back() {
                if start + last.len == p.s.id.clock
                    && !last.is_type
                    && !rec.is_type
                    && last.key.is_none()
                    && rec.key.is_none()
                    && last.node == rec.node
                {
                    last.len += rec.len;
                    continue;
                }
            }
            recs.insert(p.s.id.clock, rec);
        }
        self.deleted.merge_with(deleted.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::decode;
    use yrs::{Doc, Map, ReadTxn, StateVector, Text, Transact};

    const SCHEMA: Schema = Schema {
        items_root: Some("cards"),
        free: false,
        not_free: &[],
        map_roots: &["meta", "themes"],
        max_depth: 8,
    };

    fn diff(doc: &Doc, sv: &StateVector) -> Decoded {
        decode(&doc.transact().encode_diff_v1(sv)).unwrap()
    }

    #[test]
    fn places_items_fields_and_text_over_several_updates() {
        let doc = Doc::with_client_id(5);
        let cards = doc.get_or_insert_map("cards");
        let mut index = Index::new();
        let owner = Owner::Participant("p1".into());
        let sv0 = doc.transact().state_vector();
        let text = {
            let mut txn = doc.transact_mut();
            let card = cards.insert(&mut txn, "k", yrs::MapPrelim::default());
            card.insert(&mut txn, "section", "themas");
            card.insert(&mut txn, "text", yrs::TextPrelim::new("ab"))
        };
        let r = index
            .resolve(&diff(&doc, &sv0), &SCHEMA, Some(&owner))
            .unwrap();
        assert!(r.new_nodes.iter().any(|n| n.zone
            == Zone::Item {
                root: "cards".into(),
                key: "k".into()
            }));
        index.apply(r, Some(&owner), &IdSet::new());
        assert_eq!(index.owner(5), Some(&owner));
        // Typing later: the new characters only name their origin, yet land in the text.
        let sv1 = doc.transact().state_vector();
        text.push(&mut doc.transact_mut(), "cd");
        let r = index
            .resolve(&diff(&doc, &sv1), &SCHEMA, Some(&owner))
            .unwrap();
        assert_eq!(r.placed.len(), 1);
        let node = r.node(&index, r.placed[0].node.unwrap());
        assert!(matches!(&node.zone, Zone::Field { field, .. } if field.as_ref() == "text"));
        // The whole state again: everything is held, nothing is new.
        let all = decode(
            &doc.transact()
                .encode_state_as_update_v1(&StateVector::default()),
        )
        .unwrap();
        index.apply(r, Some(&owner), &IdSet::new());
        assert!(index.resolve(&all, &SCHEMA, None).unwrap().is_empty());
    }

    #[test]
    fn a_gap_is_missing() {
        let doc = Doc::with_client_id(5);
        let t = doc.get_or_insert_text("t");
        t.push(&mut doc.transact_mut(), "a");
        let sv = doc.transact().state_vector();
        t.push(&mut doc.transact_mut(), "b");
        let index = Index::new();
        assert_eq!(
            index.resolve(&diff(&doc, &sv), &SCHEMA, None).unwrap_err(),
            ResolveError::Missing
        );
    }

    #[test]
    fn stored_index_comes_back_identically() {
        let doc = Doc::with_client_id(5);
        let cards = doc.get_or_insert_map("cards");
        cards.insert(&mut doc.transact_mut(), "k", yrs::MapPrelim::default());
        let mut index = Index::new();
        let owner = Owner::Participant("p1".into());
        let r = index
            .resolve(&diff(&doc, &StateVector::default()), &SCHEMA, Some(&owner))
            .unwrap();
        index.apply(r, Some(&owner), &IdSet::new());
        let back = Index::from_bytes(&index.to_bytes()).unwrap();
        assert_eq!(back.to_bytes(), index.to_bytes());
        assert_eq!(back.types, index.types);
        assert_eq!(back.roots, index.roots);
    }
}
