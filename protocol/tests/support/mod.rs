//! Helpers shared by the protocol's integration tests: hand-made Yjs update bytes.

use yrs::encoding::write::Write;
use yrs::updates::encoder::{Encoder, EncoderV1};

/// One hand-made item struct: parent root `root` (or a type id), optional key, then the content
/// bytes (the ref number first, then the content as yrs writes it).
pub fn raw_item(
    client: u64,
    clock: u32,
    parent: Result<&str, (u64, u32)>,
    key: Option<&str>,
    content: &[u8],
) -> Vec<u8> {
    let mut e = EncoderV1::new();
    e.write_var(1u32); // one client
    e.write_var(1u32); // one struct
    e.write_var(client);
    e.write_var(clock);
    let mut info = content[0];
    if key.is_some() {
        info |= yrs::block::HAS_PARENT_SUB;
    }
    e.write_info(info);
    match parent {
        Ok(root) => {
            e.write_parent_info(true);
            e.write_string(root);
        }
        Err((c, k)) => {
            e.write_parent_info(false);
            e.write_left_id(&yrs::ID::new(yrs::ClientID::new(c), k));
        }
    }
    if let Some(k) = key {
        e.write_string(k);
    }
    e.write_all(&content[1..]);
    e.write_var(0u32); // empty delete set
    e.to_vec()
}
