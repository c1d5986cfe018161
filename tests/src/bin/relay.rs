//! A raw WebSocket relay, the physical limit in `scripts/bench`: every binary frame a client
//! sends goes to every other client of the same room (the URL path). No CRDT, no store, no
//! auth; TCP_NODELAY on, a 4096 listen backlog, writes batched per connection.
//!
//! Run: `relay 127.0.0.1:PORT`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};

type Peers = HashMap<u64, mpsc::UnboundedSender<Bytes>>;
type Rooms = Arc<Mutex<HashMap<String, Peers>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1234".into())
        .parse()
        .map_err(std::io::Error::other)?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?;
    println!("relay listens on {}", listener.local_addr()?);
    let rooms: Rooms = Arc::default();
    let mut next = 0u64;
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        next += 1;
        tokio::spawn(serve(tcp, next, rooms.clone()));
    }
}

// The handshake callback's error type is tungstenite's own (an HTTP response).
#[allow(clippy::result_large_err)]
async fn serve(tcp: tokio::net::TcpStream, id: u64, rooms: Rooms) {
    let mut path = String::new();
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(256 << 20));
    let cb = |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(tcp, cb, Some(config)).await
    else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    rooms
        .lock()
        .expect("rooms")
        .entry(path.clone())
        .or_default()
        .insert(id, tx);
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            let mut ok = sink.feed(Message::Binary(b)).await.is_ok();
            while let (true, Ok(b)) = (ok, rx.try_recv()) {
                ok = sink.feed(Message::Binary(b)).await.is_ok();
            }
            if !ok || sink.flush().await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        if let Message::Binary(b) = msg {
            for (peer, tx) in rooms
                .lock()
                .expect("rooms")
                .get(&path)
                .into_iter()
                .flatten()
            {
                if *peer != id {
                    let _ = tx.send(b.clone());
                }
            }
        }
    }
    let mut rooms = rooms.lock().expect("rooms");
    if let Some(peers) = rooms.get_mut(&path) {
        peers.remove(&id);
        if peers.is_empty() {
            rooms.remove(&path);
        }
    }
    writer.abort();
}
