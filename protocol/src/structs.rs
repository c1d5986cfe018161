//! Reading a v1 Yjs update struct by struct, without applying it: yrs's public decoder
//! (`DecoderV1` with `read_info`, `read_left_id`, `read_parent_info`, `read_key`, `read_len`,
//! `read_type_ref`, …) walks every struct header and its content, then the delete set
//! (`IdSet::decode`). The result is what the judge (`judge`) decides on.
//!
//! One piece is our own: plain values (`Any`) are read with a depth bound. yrs's `Any::decode`
//! recurses once per nesting level with no limit, so a few hundred kilobytes of nested arrays
//! would overflow the stack and abort the process; the judge reads every value first, so yrs
//! only ever decodes updates whose values are known to be shallow.

use std::sync::Arc;

use yrs::block::{
    BLOCK_GC_REF_NUMBER, BLOCK_ITEM_ANY_REF_NUMBER, BLOCK_ITEM_BINARY_REF_NUMBER,
    BLOCK_ITEM_DELETED_REF_NUMBER, BLOCK_ITEM_DOC_REF_NUMBER, BLOCK_ITEM_EMBED_REF_NUMBER,
    BLOCK_ITEM_FORMAT_REF_NUMBER, BLOCK_ITEM_JSON_REF_NUMBER, BLOCK_ITEM_STRING_REF_NUMBER,
    BLOCK_ITEM_TYPE_REF_NUMBER, BLOCK_SKIP_REF_NUMBER, HAS_ORIGIN, HAS_PARENT_SUB,
    HAS_RIGHT_ORIGIN,
};
use yrs::encoding::read::{Cursor, Read};
use yrs::types::{TYPE_REFS_ARRAY, TYPE_REFS_MAP, TYPE_REFS_TEXT};
use yrs::updates::decoder::{Decode, Decoder, DecoderV1};
use yrs::{Any, IdSet};

/// Plain values nested deeper than this are refused (`too-deep`).
pub const MAX_VALUE_DEPTH: usize = 32;

/// Yjs client ids are at most 53 bits (JavaScript's safe integers).
const MAX_CLIENT: u64 = (1 << 53) - 1;

/// A struct id: (client, clock).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Id {
    pub client: u64,
    pub clock: u32,
}

impl Id {
    pub fn new(client: u64, clock: u32) -> Id {
        Id { client, clock }
    }
}

/// Where an item says it lives, when it carries its parent (it has no origin).
#[derive(Debug, Clone, PartialEq)]
pub enum Parent {
    /// A root type, by name.
    Root(Arc<str>),
    /// A nested type: the id of the item whose content is that type.
    Type(Id),
}

/// The kind of a shared type an item creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    Map,
    Array,
    Text,
}

/// What a struct carries, as far as the rules care.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Garbage-collected range: content-free, it only takes up clocks.
    Gc,
    /// A placeholder in merged updates; never integrated.
    Skip,
    /// Content that was deleted before it was sent.
    Deleted,
    /// Characters of a text.
    String,
    /// An embedded value in a text.
    Embed,
    /// A formatting attribute in a text.
    Format(Arc<str>),
    /// A nested shared type.
    Type(TypeKind),
    /// Plain values (a map entry's value, or list elements).
    Any(Vec<Any>),
}

/// One struct of an update.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    pub id: Id,
    pub len: u32,
    pub origin: Option<Id>,
    pub right: Option<Id>,
    pub parent: Option<Parent>,
    /// The map key, when the item carries its parent and lives in a map.
    pub key: Option<Arc<str>>,
    pub content: Content,
}

impl Struct {
    /// Whether it carries no place of its own (GC and skip structs).
    pub fn placeless(&self) -> bool {
        matches!(self.content, Content::Gc | Content::Skip)
    }
}

/// A decoded update: its structs (in the order they were written) and its delete set as
/// (client, start, end) ranges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub structs: Vec<Struct>,
    pub deletes: Vec<(u64, u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a valid update at all: the connection is closed (1007).
    #[error("malformed update: {0}")]
    Malformed(String),
    /// Valid, but holding content Tafel's schema has no place for.
    #[error("{0}")]
    Unsupported(&'static str),
    /// Plain values nested deeper than `MAX_VALUE_DEPTH`.
    #[error("values nested deeper than {MAX_VALUE_DEPTH} levels")]
    TooDeep,
}

fn malformed(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed(e.to_string())
}

/// Walks every struct and the delete set of a v1 update. Never panics: yrs debug-asserts on
/// client ids wider than 53 bits, so the walk runs behind `catch_unwind` as well as checking.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    std::panic::catch_unwind(|| walk(bytes))
        .unwrap_or_else(|_| Err(malformed("the update cannot be decoded")))
}

fn walk(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut dec = DecoderV1::new(Cursor::new(bytes));
    let mut out = Decoded::default();
    let clients: u32 = dec.read_var().map_err(malformed)?;
    for _ in 0..clients {
        let count: u32 = dec.read_var().map_err(malformed)?;
        let client: u64 = dec.read_var().map_err(malformed)?;
        if client > MAX_CLIENT {
            return Err(malformed("client id wider than 53 bits"));
        }
        let mut clock: u32 = dec.read_var().map_err(malformed)?;
        for _ in 0..count {
            let s = read_struct(&mut dec, Id::new(client, clock))?;
            clock = clock
                .checked_add(s.len)
                .ok_or_else(|| malformed("clock overflow"))?;
            out.structs.push(s);
        }
    }
    let ds = IdSet::decode(&mut dec).map_err(malformed)?;
    for (client, ranges) in ds.iter() {
        for r in ranges.iter() {
            if r.start < r.end {
                out.deletes.push((client.get(), r.start, r.end));
            }
        }
    }
    Ok(out)
}

fn check_id(id: yrs::ID) -> Result<Id, DecodeError> {
    let client = id.client.get();
    if client > MAX_CLIENT {
        return Err(malformed("client id wider than 53 bits"));
    }
    Ok(Id::new(client, id.clock))
}

fn read_struct(dec: &mut DecoderV1<'_>, id: Id) -> Result<Struct, DecodeError> {
    let info = dec.read_info().map_err(malformed)?;
    let placeless = |len: u32, content: Content| {
        if len == 0 {
            Err(malformed("empty struct"))
        } else {
            Ok(Struct {
                id,
                len,
                origin: None,
                right: None,
                parent: None,
                key: None,
                content,
            })
        }
    };
    match info {
        BLOCK_SKIP_REF_NUMBER => {
            let len: u32 = dec.read_var().map_err(malformed)?;
            return placeless(len, Content::Skip);
        }
        BLOCK_GC_REF_NUMBER => {
            let len = dec.read_len().map_err(malformed)?;
            return placeless(len, Content::Gc);
        }
        _ => {}
    }
    let origin = if info & HAS_ORIGIN != 0 {
        Some(check_id(dec.read_left_id().map_err(malformed)?)?)
    } else {
        None
    };
    let right = if info & HAS_RIGHT_ORIGIN != 0 {
        Some(check_id(dec.read_right_id().map_err(malformed)?)?)
    } else {
        None
    };
    let carries_parent = info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0;
    let parent = if carries_parent {
        if dec.read_parent_info().map_err(malformed)? {
            Some(Parent::Root(dec.read_string().map_err(malformed)?.into()))
        } else {
            Some(Parent::Type(check_id(
                dec.read_left_id().map_err(malformed)?,
            )?))
        }
    } else {
        None
    };
    let key: Option<Arc<str>> = if carries_parent && info & HAS_PARENT_SUB != 0 {
        Some(dec.read_string().map_err(malformed)?.into())
    } else {
        None
    };
    let (len, content) = match info & 0b1111 {
        BLOCK_ITEM_DELETED_REF_NUMBER => (dec.read_len().map_err(malformed)?, Content::Deleted),
        BLOCK_ITEM_STRING_REF_NUMBER => {
            let s = dec.read_string().map_err(malformed)?;
            (s.encode_utf16().count() as u32, Content::String)
        }
        BLOCK_ITEM_EMBED_REF_NUMBER => {
            dec.read_json().map_err(malformed)?;
            (1, Content::Embed)
        }
        BLOCK_ITEM_FORMAT_REF_NUMBER => {
            let k = dec.read_key().map_err(malformed)?;
            dec.read_json().map_err(malformed)?;
            (1, Content::Format(k))
        }
        BLOCK_ITEM_TYPE_REF_NUMBER => {
            let kind = match dec.read_type_ref().map_err(malformed)? {
                TYPE_REFS_MAP => TypeKind::Map,
                TYPE_REFS_ARRAY => TypeKind::Array,
                TYPE_REFS_TEXT => TypeKind::Text,
                _ => {
                    return Err(DecodeError::Unsupported(
                        "XML, weak-link and subdocument types are not part of the schema",
                    ))
                }
            };
            (1, Content::Type(kind))
        }
        BLOCK_ITEM_ANY_REF_NUMBER => {
            let n = dec.read_len().map_err(malformed)?;
            let mut values = Vec::new();
            for _ in 0..n {
                values.push(read_any(dec, 0)?);
            }
            (n, Content::Any(values))
        }
        BLOCK_ITEM_JSON_REF_NUMBER | BLOCK_ITEM_BINARY_REF_NUMBER => {
            return Err(DecodeError::Unsupported(
                "legacy JSON and binary content is not part of the schema",
            ))
        }
        BLOCK_ITEM_DOC_REF_NUMBER => {
            return Err(DecodeError::Unsupported(
                "subdocuments are not part of the schema",
            ))
        }
        _ => return Err(malformed("unknown content type")),
    };
    if len == 0 {
        return Err(malformed("empty struct"));
    }
    Ok(Struct {
        id,
        len,
        origin,
        right,
        parent,
        key,
        content,
    })
}

/// `Any::decode` with a depth bound (same encoding table as lib0's `readAny`).
fn read_any(dec: &mut DecoderV1<'_>, depth: usize) -> Result<Any, DecodeError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    Ok(match dec.read_u8().map_err(malformed)? {
        127 => Any::Undefined,
        126 => Any::Null,
        125 => Any::Number(yrs::Number::Int(dec.read_var::<i64>().map_err(malformed)?)),
        124 => Any::Number(yrs::Number::Float(dec.read_f32().map_err(malformed)? as f64)),
        123 => Any::Number(yrs::Number::Float(dec.read_f64().map_err(malformed)?)),
        122 => Any::Number(yrs::Number::Int(dec.read_i64().map_err(malformed)?)),
        121 => Any::Bool(false),
        120 => Any::Bool(true),
        119 => Any::String(dec.read_string().map_err(malformed)?.into()),
        118 => {
            let n: usize = dec.read_var().map_err(malformed)?;
            let mut map = std::collections::HashMap::new();
            for _ in 0..n {
                let k = dec.read_string().map_err(malformed)?.to_owned();
                let v = read_any(dec, depth + 1)?;
                map.insert(k, v);
            }
            Any::Map(Arc::new(map))
        }
        117 => {
            let n: usize = dec.read_var().map_err(malformed)?;
            let mut arr = Vec::new();
            for _ in 0..n {
                arr.push(read_any(dec, depth + 1)?);
            }
            Any::Array(arr.into())
        }
        116 => Any::Buffer(dec.read_buf().map_err(malformed)?.into()),
        _ => return Err(malformed("unknown value type")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Array, Doc, Map, ReadTxn, StateVector, Text, Transact};

    fn full(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    #[test]
    fn reads_map_entries_text_and_types() {
        let doc = Doc::with_client_id(7);
        let cards = doc.get_or_insert_map("cards");
        {
            let mut txn = doc.transact_mut();
            let card = cards.insert(&mut txn, "k", yrs::MapPrelim::default());
            card.insert(&mut txn, "section", "themas");
            let t = card.insert(&mut txn, "text", yrs::TextPrelim::new("héé"));
            t.push(&mut txn, "!");
        }
        let d = decode(&full(&doc)).unwrap();
        let root = &d.structs[0];
        assert_eq!(root.parent, Some(Parent::Root("cards".into())));
        assert_eq!(root.key.as_deref(), Some("k"));
        assert_eq!(root.content, Content::Type(TypeKind::Map));
        assert!(d.structs.iter().any(|s| s.key.as_deref() == Some("section")
            && s.content == Content::Any(vec!["themas".into()])));
        let chars: u32 = d
            .structs
            .iter()
            .filter(|s| s.content == Content::String)
            .map(|s| s.len)
            .sum();
        assert_eq!(chars, 4);
        assert!(d.deletes.is_empty());
    }

    #[test]
    fn reads_delete_sets_and_keyless_list_content() {
        let doc = Doc::with_client_id(9);
        let list = doc.get_or_insert_array("cards");
        list.insert_range(&mut doc.transact_mut(), 0, [1, 2, 3]);
        list.remove_range(&mut doc.transact_mut(), 0, 2);
        let d = decode(&full(&doc)).unwrap();
        assert!(d.structs.iter().all(|s| s.key.is_none()));
        assert_eq!(d.deletes, vec![(9, 0, 2)]);
    }

    #[test]
    fn deep_values_are_refused_not_overflowed() {
        // 100,000 nested arrays in one map entry, written by hand: [1, 1, 9, 0, 40+8 ...].
        let mut v = [117u8, 1].repeat(100_000);
        v.push(126);
        let mut bytes = vec![1, 1, 5, 0];
        bytes.push(0b0010_1000); // parent-sub + Any content
        bytes.push(1); // parent is a root
        bytes.extend([1, b'm']); // root "m"
        bytes.extend([1, b'k']); // key "k"
        bytes.push(1); // one value
        bytes.extend(v);
        bytes.extend([0]); // empty delete set
        assert_eq!(decode(&bytes), Err(DecodeError::TooDeep));
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(matches!(
            decode(&[1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(decode(&[]), Err(DecodeError::Malformed(_))));
    }
}
