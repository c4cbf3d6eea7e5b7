//! Starting a node: the one place that puts the process core and the
//! distribution layer together.
//!
//! The core ([`Node`], processes, signals) knows the distribution layer
//! only through [`crate::transport`]; the layer builds on the core. This
//! module sits above both: it resolves the cookie, binds the listener,
//! assembles the node with its layer and starts accepting connections.

use crate::clock::ClockSource;
use crate::dist::cookie::{Cookie, CookieError};
use crate::dist::handshake::LocalInfo;
use crate::dist::{ConfigError, Dist, DistConfig};
use crate::node::{Node, valid_node_name};
use crate::transport::Layer;
use std::sync::Arc;
use std::time::SystemTime;

/// Configuration of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The node name, `name@host`.
    pub name: String,
    /// Where the node reads monotonic time from.
    pub clock: ClockSource,
    /// Distribution: listen address, cookie, tick time. `None` for a node
    /// that neither listens nor connects.
    pub dist: Option<DistConfig>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "nonode@nohost".to_owned(),
            clock: ClockSource::Fast,
            dist: None,
        }
    }
}

impl NodeConfig {
    /// A configuration with the given `name@host`.
    pub fn new(name: impl Into<String>) -> Self {
        NodeConfig {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Sets the clock source.
    pub fn clock(mut self, clock: ClockSource) -> Self {
        self.clock = clock;
        self
    }

    /// Makes the node distributed.
    pub fn dist(mut self, dist: DistConfig) -> Self {
        self.dist = Some(dist);
        self
    }
}

/// Starting a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// `Node::start` was called outside a tokio runtime.
    #[error("a node must be started inside a tokio runtime")]
    NoRuntime,
    /// The node name is not of the form `name@host`.
    #[error("invalid node name {0:?}: expected name@host")]
    InvalidName(String),
    /// The cookie could not be resolved.
    #[error(transparent)]
    Cookie(#[from] CookieError),
    /// A distribution setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(String, #[source] std::io::Error),
}

impl Node {
    /// Starts a node on the current tokio runtime.
    ///
    /// # Errors
    /// [`NodeError::NoRuntime`] outside a runtime; [`NodeError::InvalidName`]
    /// for a name that is not `name@host`; [`NodeError::Config`] for a
    /// distribution setting out of range; [`NodeError::Cookie`] when the
    /// cookie cannot be had; [`NodeError::Listen`] when the address cannot
    /// be bound.
    pub fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NodeError::NoRuntime)?;
        if !valid_node_name(&config.name) {
            return Err(NodeError::InvalidName(config.name));
        }
        let name: Arc<str> = config.name.into();
        let now = SystemTime::now();
        let nanos = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        // A 16-bit creation keeps pids short; it differs between incarnations
        // started at different nanoseconds with probability 1 - 1/65535.
        let creation =
            (((nanos ^ (nanos >> 17) ^ u128::from(std::process::id())) % 65_535) + 1) as u32;
        let (dist, listener) = match config.dist {
            Some(dc) => {
                dc.validate()?;
                let local = LocalInfo {
                    name: name.to_string(),
                    creation,
                    hidden: dc.hidden,
                    listen: None,
                    // Only a node others connect to may create the cookie file.
                    cookie: Cookie::resolve(dc.cookie.as_deref(), !dc.hidden)?,
                };
                let listen = dc.listen;
                let (dist, listener) = Dist::bind(local, dc).map_err(|e| {
                    NodeError::Listen(listen.map(|a| a.to_string()).unwrap_or_default(), e)
                })?;
                (Some(dist), listener)
            }
            None => (None, None),
        };
        let node = Node::assemble(
            name,
            creation,
            config.clock,
            handle,
            now,
            dist.clone().map(Layer::new),
        );
        if let Some(dist) = &dist {
            dist.attach(&node);
        }
        if let (Some(dist), Some(listener)) = (dist, listener) {
            crate::dist::raise_open_files_limit();
            node.handle()
                .spawn(Dist::accept_loop(node.clone(), dist, listener));
        }
        Ok(node)
    }
}
