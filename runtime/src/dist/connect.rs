//! Making connections: the accept loop, outgoing connects, and the TLS
//! layer under both, each handing the socket to the handshake and then to
//! the connection table.

use super::admission::{HandshakeSlot, PREAUTH_MAX_FRAME};
use super::fd_limit::{Reserve, out_of_descriptors};
use super::handshake::{Handshake, PeerInfo};
use super::peers::Dist;
use super::proto::RefuseReason;
use super::session;
use super::{ConnectError, codec};
use crate::node::Node;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;

impl Dist {
    /// Accepts connections until the node's runtime stops.
    pub(crate) async fn accept_loop(node: Node, dist: Arc<Dist>, listener: TcpListener) {
        let mut reserve = Reserve::new();
        loop {
            match listener.accept().await {
                Ok((stream, addr)) => {
                    dist.counters.accepted.fetch_add(1, Relaxed);
                    let cfg = &dist.config;
                    let Some(slot) = dist.admission.admit(
                        addr.ip(),
                        cfg.max_handshakes,
                        cfg.max_handshakes_per_ip,
                    ) else {
                        // Closed before a byte is read: a stranger cannot
                        // queue work or hold more than the limit.
                        dist.counters.turned_away.fetch_add(1, Relaxed);
                        tracing::debug!(%addr, "too many handshakes in progress: connection closed");
                        drop(stream);
                        continue;
                    };
                    tokio::spawn(Dist::accept_one(
                        node.clone(),
                        dist.clone(),
                        stream,
                        addr,
                        slot,
                    ));
                }
                Err(e) if out_of_descriptors(&e) && reserve.release() => {
                    // Out of descriptors: with the reserved one free, take
                    // the waiting connection and close it at once, so that
                    // its peer learns now rather than after its timeout.
                    if let Ok((stream, addr)) = listener.accept().await {
                        dist.counters.turned_away.fetch_add(1, Relaxed);
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
    async fn accept_one(
        node: Node,
        dist: Arc<Dist>,
        stream: TcpStream,
        addr: SocketAddr,
        slot: HandshakeSlot,
    ) {
        let _ = stream.set_nodelay(true);
        match dist.config.tls.clone() {
            None => {
                let (r, w) = stream.into_split();
                Dist::accept_on(node, dist, r, w, addr, slot).await;
            }
            Some(tls) => {
                let accepted = tokio::time::timeout(
                    dist.config.handshake_timeout,
                    tls.acceptor.accept(stream),
                )
                .await;
                match accepted {
                    Ok(Ok(s)) => {
                        let (r, w) = tokio::io::split(s);
                        Dist::accept_on(node, dist, r, w, addr, slot).await;
                    }
                    Ok(Err(e)) => dist.handshake_failed(addr, None, &ConnectError::Tls(e)),
                    Err(_) => dist.handshake_failed(addr, None, &ConnectError::Timeout),
                }
            }
        }
    }

    async fn accept_on<R, W>(
        node: Node,
        dist: Arc<Dist>,
        r: R,
        mut w: W,
        addr: SocketAddr,
        slot: HandshakeSlot,
    ) where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let mut reader = FramedRead::new(r, codec::length_codec(PREAUTH_MAX_FRAME));
        let mut hs = Handshake::acceptor(dist.local.clone(), nonce());
        let admit = |p: &PeerInfo| dist.admit(p);
        let result = tokio::time::timeout(
            dist.config.handshake_timeout,
            session::handshake(
                &mut hs,
                None,
                &mut reader,
                &mut w,
                dist.config.max_frame,
                &admit,
                Some(&dist),
            ),
        )
        .await
        .unwrap_or(Err(ConnectError::Timeout));
        drop(slot);
        match result {
            Ok(peer) => {
                // Authenticated: frames may now be as large as configured.
                reader
                    .decoder_mut()
                    .set_max_frame_length(dist.config.max_frame);
                if let Err(reason) = dist.establish(&node, peer, addr, false, reader, w) {
                    tracing::debug!(%addr, %reason, "dropped a duplicate connection");
                }
            }
            Err(e) => dist.handshake_failed(addr, hs.claimed_name(), &e),
        }
    }

    /// Connects to the node listening at `addr`; returns its name.
    pub(crate) async fn connect(
        node: &Node,
        dist: &Arc<Dist>,
        addr: SocketAddr,
    ) -> Result<String, ConnectError> {
        if let Some(name) = dist.peer_listening_at(addr) {
            return Ok(name);
        }
        dist.counters.initiated.fetch_add(1, Relaxed);
        let stream = tokio::time::timeout(dist.config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout)??;
        let _ = stream.set_nodelay(true);
        match dist.config.tls.clone() {
            None => {
                let (r, w) = stream.into_split();
                Dist::connect_on(node, dist, r, w, addr).await
            }
            Some(tls) => {
                let connected = tokio::time::timeout(
                    dist.config.handshake_timeout,
                    tls.connector.connect(tls.server_name.clone(), stream),
                )
                .await;
                match connected {
                    Ok(Ok(s)) => {
                        let (r, w) = tokio::io::split(s);
                        Dist::connect_on(node, dist, r, w, addr).await
                    }
                    Ok(Err(e)) => {
                        let e = ConnectError::Tls(e);
                        dist.handshake_failed(addr, None, &e);
                        Err(e)
                    }
                    Err(_) => {
                        dist.handshake_failed(addr, None, &ConnectError::Timeout);
                        Err(ConnectError::Timeout)
                    }
                }
            }
        }
    }

    async fn connect_on<R, W>(
        node: &Node,
        dist: &Arc<Dist>,
        r: R,
        mut w: W,
        addr: SocketAddr,
    ) -> Result<String, ConnectError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        // The listener has not proved the cookie yet either.
        let mut reader = FramedRead::new(r, codec::length_codec(PREAUTH_MAX_FRAME));
        let (mut hs, hello) = Handshake::initiator(dist.local.clone(), nonce());
        let result = tokio::time::timeout(
            dist.config.handshake_timeout,
            session::handshake(
                &mut hs,
                Some(hello),
                &mut reader,
                &mut w,
                dist.config.max_frame,
                &|_: &PeerInfo| Ok(()),
                None,
            ),
        )
        .await
        .unwrap_or(Err(ConnectError::Timeout));
        let peer = match result {
            Ok(peer) => peer,
            Err(e) => {
                dist.handshake_failed(addr, hs.claimed_name(), &e);
                return Err(e);
            }
        };
        let name = peer.name.clone();
        reader
            .decoder_mut()
            .set_max_frame_length(dist.config.max_frame);
        match dist.establish(node, peer, addr, true, reader, w) {
            Ok(()) => Ok(name),
            Err(RefuseReason::Duplicate) if dist.peers.lock().contains_key(&name) => Ok(name),
            Err(reason) => Err(ConnectError::Handshake(super::HandshakeError::Refused(
                reason,
            ))),
        }
    }
}

fn nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    getrandom::fill(&mut n).expect("the OS random source is available");
    n
}
