//! Making connections: the accept loop, outgoing connects, and the TLS
//! layer under both, each handing the socket to the handshake, then to
//! the connection table and a session that reports to the layer's
//! [`Router`].

use super::admission::{HandshakeSlot, PREAUTH_MAX_FRAME};
use super::fd_limit::{Reserve, out_of_descriptors};
use super::frame::RefuseReason;
use super::handshake::{Handshake, PeerInfo};
use super::peer::Peer;
use super::session::{self, Reader, Router};
use super::{ConnectError, codec};
use crate::node::Node;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

/// Accepts connections until the node's runtime stops.
pub(crate) async fn accept_loop<D: Router>(node: Node, dist: Arc<D>, listener: TcpListener) {
    let mut reserve = Reserve::new();
    let mesh = dist.mesh();
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                mesh.counters.accepted.fetch_add(1, Relaxed);
                let cfg = &mesh.config;
                // Full slots give way to the newcomer: the stalest
                // handshake is closed (see `admission`).
                let (slot, evicted) =
                    mesh.admission
                        .admit(addr.ip(), cfg.max_handshakes, cfg.max_handshakes_per_ip);
                if evicted {
                    mesh.counters.turned_away.fetch_add(1, Relaxed);
                    tracing::debug!(%addr, "handshake slots full: the stalest handshake closed");
                }
                tokio::spawn(accept_one(node.clone(), dist.clone(), stream, addr, slot));
            }
            Err(e) if out_of_descriptors(&e) && reserve.release() => {
                // Out of descriptors: with the reserved one free, take
                // the waiting connection and close it at once, so that
                // its peer learns now rather than after its timeout.
                if let Ok((stream, addr)) = listener.accept().await {
                    mesh.counters.turned_away.fetch_add(1, Relaxed);
                    tracing::warn!(%addr, "out of file descriptors: connection closed");
                    drop(stream);
                }
                reserve.refill();
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                reserve.refill();
            }
        }
    }
}

/// Authenticates one accepted connection; `slot` is held until the
/// handshake (TLS included) has ended.
async fn accept_one<D: Router>(
    node: Node,
    dist: Arc<D>,
    stream: TcpStream,
    addr: SocketAddr,
    slot: HandshakeSlot,
) {
    let _ = stream.set_nodelay(true);
    let mesh = dist.mesh();
    match mesh.config.tls.clone() {
        None => {
            let (r, w) = stream.into_split();
            accept_on(node, dist, r, w, addr, slot).await;
        }
        Some(tls) => {
            let accepted = tokio::select! {
                a = tokio::time::timeout(mesh.config.handshake_step_timeout, tls.acceptor.accept(stream)) => a,
                () = slot.evicted() => return,
            };
            match accepted {
                Ok(Ok(s)) => {
                    slot.progressed();
                    let (r, w) = tokio::io::split(s);
                    accept_on(node, dist, r, w, addr, slot).await;
                }
                Ok(Err(e)) => mesh.handshake_failed(addr, None, &ConnectError::Tls(e)),
                Err(_) => mesh.handshake_failed(addr, None, &ConnectError::Timeout),
            }
        }
    }
}

async fn accept_on<D, R, W>(
    node: Node,
    dist: Arc<D>,
    r: R,
    mut w: W,
    addr: SocketAddr,
    slot: HandshakeSlot,
) where
    D: Router,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mesh = dist.mesh();
    let mut reader = FramedRead::new(r, codec::length_codec(PREAUTH_MAX_FRAME));
    let mut hs = Handshake::acceptor(mesh.local.clone(), nonce());
    let admit = |p: &PeerInfo| mesh.admit(p);
    let progressed = || slot.progressed();
    let shaken = tokio::time::timeout(
        mesh.config.handshake_timeout,
        session::handshake(
            &mut hs,
            None,
            &mut reader,
            &mut w,
            mesh.config.max_frame,
            &admit,
            Some(mesh),
            session::Pace {
                step: mesh.config.handshake_step_timeout,
                progressed: &progressed,
            },
        ),
    );
    let result = tokio::select! {
        r = shaken => r.unwrap_or(Err(ConnectError::Timeout)),
        // A newcomer took the slot: this stranger stalled the longest.
        () = slot.evicted() => return,
    };
    drop(slot);
    match result {
        Ok(peer) => {
            // Authenticated: frames may now be as large as configured.
            reader
                .decoder_mut()
                .set_max_frame_length(mesh.config.max_frame);
            if let Err(reason) = establish(&node, &dist, peer, addr, false, reader, w) {
                tracing::debug!(%addr, %reason, "dropped a duplicate connection");
            }
        }
        Err(e) => mesh.handshake_failed(addr, hs.claimed_name(), &e),
    }
}

/// How many times a connect is tried when the listener closes the
/// handshake without a word: it gave the slot to a newcomer (see
/// `admission`), and a fresh try is admitted as the newest.
const CLOSED_TRIES: usize = 3;

/// Connects to the node listening at `addr`; returns its name.
pub(crate) async fn connect<D: Router>(
    node: &Node,
    dist: &Arc<D>,
    addr: SocketAddr,
) -> Result<String, ConnectError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match connect_once(node, dist, addr).await {
            Err(ConnectError::Closed) if tries < CLOSED_TRIES => continue,
            done => return done,
        }
    }
}

async fn connect_once<D: Router>(
    node: &Node,
    dist: &Arc<D>,
    addr: SocketAddr,
) -> Result<String, ConnectError> {
    let mesh = dist.mesh();
    if let Some(name) = mesh.peer_listening_at(addr) {
        return Ok(name);
    }
    mesh.counters.initiated.fetch_add(1, Relaxed);
    let stream = tokio::time::timeout(mesh.config.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout)??;
    let _ = stream.set_nodelay(true);
    match mesh.config.tls.clone() {
        None => {
            let (r, w) = stream.into_split();
            connect_on(node, dist, r, w, addr).await
        }
        Some(tls) => {
            let connected = tokio::time::timeout(
                mesh.config.handshake_timeout,
                tls.connector.connect(tls.server_name.clone(), stream),
            )
            .await;
            match connected {
                Ok(Ok(s)) => {
                    let (r, w) = tokio::io::split(s);
                    connect_on(node, dist, r, w, addr).await
                }
                Ok(Err(e)) => {
                    let e = ConnectError::Tls(e);
                    mesh.handshake_failed(addr, None, &e);
                    Err(e)
                }
                Err(_) => {
                    mesh.handshake_failed(addr, None, &ConnectError::Timeout);
                    Err(ConnectError::Timeout)
                }
            }
        }
    }
}

async fn connect_on<D, R, W>(
    node: &Node,
    dist: &Arc<D>,
    r: R,
    mut w: W,
    addr: SocketAddr,
) -> Result<String, ConnectError>
where
    D: Router,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mesh = dist.mesh();
    // The listener has not proved the cookie yet either.
    let mut reader = FramedRead::new(r, codec::length_codec(PREAUTH_MAX_FRAME));
    let (mut hs, hello) = Handshake::initiator(mesh.local.clone(), nonce());
    let result = tokio::time::timeout(
        mesh.config.handshake_timeout,
        session::handshake(
            &mut hs,
            Some(hello),
            &mut reader,
            &mut w,
            mesh.config.max_frame,
            &|_: &PeerInfo| Ok(()),
            None,
            session::Pace {
                step: mesh.config.handshake_step_timeout,
                progressed: &|| {},
            },
        ),
    )
    .await
    .unwrap_or(Err(ConnectError::Timeout));
    let peer = match result {
        Ok(peer) => peer,
        Err(e) => {
            mesh.handshake_failed(addr, hs.claimed_name(), &e);
            return Err(e);
        }
    };
    let name = peer.name.clone();
    reader
        .decoder_mut()
        .set_max_frame_length(mesh.config.max_frame);
    match establish(node, dist, peer, addr, true, reader, w) {
        Ok(()) => Ok(name),
        Err(RefuseReason::Duplicate) if mesh.peer(&name).is_some() => Ok(name),
        Err(reason) => Err(ConnectError::Handshake(super::HandshakeError::Refused(
            reason,
        ))),
    }
}

/// Enters an authenticated connection in the table and starts its
/// session; a new node is announced, and the router tells it what a
/// newly connected node must learn.
fn establish<D, R, W>(
    node: &Node,
    dist: &Arc<D>,
    info: PeerInfo,
    addr: SocketAddr,
    initiated_here: bool,
    reader: Reader<R>,
    writer: W,
) -> Result<(), RefuseReason>
where
    D: Router,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mesh = dist.mesh();
    let (tx, rx) = mpsc::unbounded_channel();
    let peer = Arc::new(Peer::new(info, addr, initiated_here, tx));
    let replaced = mesh.insert(&peer)?;
    tokio::spawn(session::run(
        node.clone(),
        dist.clone(),
        peer.clone(),
        reader,
        writer,
        rx,
    ));
    if replaced.is_none() {
        mesh.node_up(node, &peer);
    }
    dist.established(node, &peer);
    Ok(())
}

fn nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    getrandom::fill(&mut n).expect("the OS random source is available");
    n
}
