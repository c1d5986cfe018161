//! A small y-websocket client on yrs and tokio-tungstenite. It speaks the protocol like the npm
//! client (sync step 1 on connect, answers the server's step 1, applies updates) and can also
//! misbehave on purpose: send raw bytes, write where the UI would not let it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tafel_protocol::wire::{
    decode_frame, encode_awareness, encode_sync_step1, encode_sync_step2, encode_update,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, GetString, Map, ReadTxn, StateVector, Text, Transact, Update};

#[derive(Default, Debug)]
pub struct Seen {
    /// Reasons of every auth "permission denied" message received.
    pub denied: Vec<String>,
    /// The close frame the server sent (code, reason), or (1006, "") when the socket just died.
    pub closed: Option<(u16, String)>,
    /// Set once the server's sync step 2 arrived.
    pub synced: bool,
    /// Current awareness states by client id (removed ones are absent).
    pub awareness: HashMap<u64, String>,
    /// Update frames received (not counting sync step 2).
    pub updates_received: usize,
}

pub struct YClient {
    pub doc: Doc,
    out: mpsc::UnboundedSender<WsMessage>,
    seen: Arc<Mutex<Seen>>,
    awareness_clock: Mutex<u32>,
}

impl YClient {
    /// Connects and starts syncing; does not wait for the sync to finish.
    pub async fn connect(url: &str) -> Result<YClient, tokio_tungstenite::tungstenite::Error> {
        Self::connect_with_doc(url, Doc::new()).await
    }

    pub async fn connect_with_doc(
        url: &str,
        doc: Doc,
    ) -> Result<YClient, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
        let seen = Arc::new(Mutex::new(Seen::default()));
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                let closing = matches!(m, WsMessage::Close(_));
                if sink.send(m).await.is_err() || closing {
                    break;
                }
            }
        });
        let reader_doc = doc.clone();
        let reader_seen = seen.clone();
        let reader_out = out.clone();
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(WsMessage::Binary(b)) => handle(&reader_doc, &reader_seen, &reader_out, &b),
                    Ok(WsMessage::Close(c)) => {
                        let c = c.map(|c| (u16::from(c.code), c.reason.to_string()));
                        lock(&reader_seen).closed = Some(c.unwrap_or((1005, String::new())));
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let mut s = lock(&reader_seen);
            if s.closed.is_none() {
                s.closed = Some((1006, String::new()));
            }
        });
        let sv = doc.transact().state_vector();
        let _ = out.send(WsMessage::Binary(encode_sync_step1(&sv).into()));
        Ok(YClient {
            doc,
            out,
            seen,
            awareness_clock: Mutex::new(0),
        })
    }

    /// Connects and waits (up to 10 s) for the server's sync step 2.
    pub async fn connect_synced(url: &str) -> YClient {
        let c = Self::connect(url).await.expect("connect");
        assert!(
            c.wait(Duration::from_secs(10), |s| s.synced).await,
            "no sync step 2 from {url}"
        );
        c
    }

    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        lock(&self.seen)
    }

    /// Waits until `pred` holds for what was seen.
    pub async fn wait(&self, timeout: Duration, pred: impl Fn(&Seen) -> bool) -> bool {
        crate::eventually(timeout, || pred(&self.seen())).await
    }

    /// Waits for a `permission-denied` beyond the first `before` ones and asserts that its
    /// reason mentions `topic` (case-insensitive), so a refusal for the wrong reason (or a
    /// close instead of a refusal) fails the test.
    pub async fn assert_refused(&self, before: usize, topic: &str, timeout: Duration) {
        let came = self.wait(timeout, |s| s.denied.len() > before).await;
        let seen = self.seen();
        assert!(
            came,
            "no refusal about {topic:?} within {timeout:?} (refusals {:?}, closed {:?})",
            seen.denied, seen.closed
        );
        let reason = &seen.denied[before];
        assert!(
            reason.to_lowercase().contains(&topic.to_lowercase()),
            "refused, but for another reason than {topic:?}: {reason:?}"
        );
    }

    /// Waits until the text `name` equals or contains `want`.
    pub async fn wait_text(&self, name: &str, want: &str, timeout: Duration) -> bool {
        crate::eventually(timeout, || self.text(name).contains(want)).await
    }

    pub fn text(&self, name: &str) -> String {
        let t = self.doc.get_or_insert_text(name);
        t.get_string(&self.doc.transact())
    }

    /// Appends to a text locally and sends the update.
    pub fn push_text(&self, name: &str, s: &str) {
        self.edit(|doc| {
            let t = doc.get_or_insert_text(name);
            t.push(&mut doc.transact_mut(), s);
        });
    }

    /// Sets a map key locally and sends the update.
    pub fn set_map(&self, name: &str, key: &str, value: i64) {
        self.edit(|doc| {
            let m = doc.get_or_insert_map(name);
            m.insert(&mut doc.transact_mut(), key, value);
        });
    }

    /// Runs a local edit and sends exactly what it changed as one update message.
    pub fn edit(&self, f: impl FnOnce(&Doc)) {
        let before = self.doc.transact().state_vector();
        let before_ds = self.doc.transact().snapshot().delete_set;
        f(&self.doc);
        let txn = self.doc.transact();
        let mut update = txn.encode_diff_v1(&before);
        if txn.snapshot().delete_set != before_ds {
            // Deletions are not covered by a state-vector diff: send the full state instead.
            update = txn.encode_state_as_update_v1(&StateVector::default());
        }
        self.send_raw(encode_update(update));
    }

    /// Adds a card (or gap row) to the items map `root` as one update: a map with the given
    /// plain fields and, when `text` is given, a Y.Text under `text_field`.
    pub fn add_item(
        &self,
        root: &str,
        id: &str,
        fields: serde_json::Value,
        text_field: &str,
        text: &str,
    ) {
        self.edit(|doc| {
            let items = doc.get_or_insert_map(root);
            let mut txn = doc.transact_mut();
            let mut prelim: Vec<(String, yrs::In)> = Vec::new();
            for (k, v) in fields.as_object().into_iter().flatten() {
                let any: yrs::Any = serde_json::from_value(v.clone()).unwrap_or(yrs::Any::Null);
                prelim.push((k.clone(), yrs::In::Any(any)));
            }
            let item = items.insert(&mut txn, id, yrs::MapPrelim::from_iter(prelim));
            if !text_field.is_empty() {
                item.insert(&mut txn, text_field, yrs::TextPrelim::new(text));
            }
        });
    }

    /// Adds a canvas card in `section` with `text` and extra plain fields.
    pub fn add_card(&self, id: &str, section: &str, text: &str, extra: serde_json::Value) {
        let mut fields = serde_json::json!({"section": section});
        for (k, v) in extra.as_object().into_iter().flatten() {
            fields[k] = v.clone();
        }
        self.add_item("cards", id, fields, "text", text);
    }

    /// Appends to the text of an existing item.
    pub fn append_item_text(&self, root: &str, id: &str, field: &str, s: &str) {
        self.edit(|doc| {
            let items = doc.get_or_insert_map(root);
            let mut txn = doc.transact_mut();
            if let Some(yrs::Out::YMap(item)) = items.get(&txn, id) {
                if let Some(yrs::Out::YText(t)) = item.get(&txn, field) {
                    let at = t.len(&txn);
                    t.insert(&mut txn, at, s);
                }
            }
        });
    }

    /// Sets a plain field of an existing item.
    pub fn set_item_field(&self, root: &str, id: &str, field: &str, value: serde_json::Value) {
        self.edit(|doc| {
            let items = doc.get_or_insert_map(root);
            let mut txn = doc.transact_mut();
            if let Some(yrs::Out::YMap(item)) = items.get(&txn, id) {
                let any: yrs::Any = serde_json::from_value(value).unwrap_or(yrs::Any::Null);
                item.insert(&mut txn, field, any);
            }
        });
    }

    /// Removes an item.
    pub fn remove_item(&self, root: &str, id: &str) {
        self.edit(|doc| {
            let items = doc.get_or_insert_map(root);
            let mut txn = doc.transact_mut();
            items.remove(&mut txn, id);
        });
    }

    /// The items map `root` as JSON (texts as strings).
    pub fn items(&self, root: &str) -> serde_json::Value {
        let items = self.doc.get_or_insert_map(root);
        let txn = self.doc.transact();
        let mut out = serde_json::Map::new();
        for (k, v) in items.iter(&txn) {
            let json = match v {
                yrs::Out::YMap(m) => {
                    let mut o = serde_json::Map::new();
                    for (fk, fv) in m.iter(&txn) {
                        let val = match fv {
                            yrs::Out::YText(t) => serde_json::Value::String(t.get_string(&txn)),
                            yrs::Out::Any(a) => serde_json::to_value(a).unwrap_or_default(),
                            other => serde_json::Value::String(other.to_string(&txn)),
                        };
                        o.insert(fk.to_owned(), val);
                    }
                    serde_json::Value::Object(o)
                }
                other => serde_json::Value::String(other.to_string(&txn)),
            };
            out.insert(k.to_owned(), json);
        }
        serde_json::Value::Object(out)
    }

    /// One root map as JSON (plain values).
    pub fn map_json(&self, root: &str) -> serde_json::Value {
        let m = self.doc.get_or_insert_map(root);
        let txn = self.doc.transact();
        serde_json::to_value(yrs::types::ToJson::to_json(&m, &txn)).unwrap_or_default()
    }

    /// The whole document state as bytes (to search for things that must not be there).
    pub fn state_bytes(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// Publishes this client's awareness state (a JSON string) under `client_id`.
    pub fn set_awareness(&self, client_id: u64, json: &str) {
        let clock = {
            let mut c = self
                .awareness_clock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *c += 1;
            *c
        };
        let mut clients = HashMap::new();
        clients.insert(
            ClientID::new(client_id),
            AwarenessUpdateEntry {
                clock,
                json: json.into(),
            },
        );
        self.send_raw(encode_awareness(AwarenessUpdate { clients }));
    }

    /// Sends any bytes as one binary frame.
    pub fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.out.send(WsMessage::Binary(bytes.into()));
    }

    pub fn send_text_frame(&self, s: &str) {
        let _ = self.out.send(WsMessage::Text(s.into()));
    }

    /// Closes the socket politely.
    pub fn close(&self) {
        let _ = self.out.send(WsMessage::Close(None));
    }

    pub fn closed(&self) -> Option<(u16, String)> {
        self.seen().closed.clone()
    }
}

impl Drop for YClient {
    /// A dropped client says goodbye, so the server sees it leave.
    fn drop(&mut self) {
        self.close();
    }
}

fn lock(m: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn apply(doc: &Doc, bytes: &[u8]) {
    if let Ok(u) = Update::decode_v1(bytes) {
        let _ = doc.transact_mut().apply_update(u);
    }
}

fn handle(doc: &Doc, seen: &Mutex<Seen>, out: &mpsc::UnboundedSender<WsMessage>, frame: &[u8]) {
    let Ok(msg) = decode_frame(frame) else { return };
    match msg {
        Message::Sync(SyncMessage::SyncStep1(sv)) => {
            let diff = doc.transact().encode_diff_v1(&sv);
            let _ = out.send(WsMessage::Binary(encode_sync_step2(diff).into()));
        }
        Message::Sync(SyncMessage::SyncStep2(u)) => {
            apply(doc, &u);
            lock(seen).synced = true;
        }
        Message::Sync(SyncMessage::Update(u)) => {
            apply(doc, &u);
            lock(seen).updates_received += 1;
        }
        Message::Auth(Some(reason)) => lock(seen).denied.push(reason),
        Message::Awareness(update) => {
            let mut s = lock(seen);
            for (id, e) in update.clients {
                if &*e.json == "null" {
                    s.awareness.remove(&id.get());
                } else {
                    s.awareness.insert(id.get(), e.json.to_string());
                }
            }
        }
        _ => {}
    }
}
