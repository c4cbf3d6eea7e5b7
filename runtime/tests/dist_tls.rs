//! TLS node links with certificates from a CA generated in the test.

mod support;

use clustertop_runtime::dist::TlsConfig;
use clustertop_runtime::dist::{ConnectError, DistConfig};
use clustertop_runtime::{Node, NodeConfig, Received};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

/// TLS settings for one node, its certificate signed by `signer`, trusting `trust`.
fn tls(signer: &Ca, trust: &Ca) -> TlsConfig {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["clustertop".to_string()]).unwrap();
    let cert = params.signed_by(&key, &signer.cert, &signer.key).unwrap();
    TlsConfig::from_pem(
        &trust.cert.pem(),
        &cert.pem(),
        &key.serialize_pem(),
        "clustertop",
    )
    .unwrap()
}

fn node(name: &str, tls: Option<TlsConfig>) -> Node {
    let mut config = DistConfig::listen("127.0.0.1:0".parse().unwrap()).cookie("t");
    config.tls = tls;
    Node::start(NodeConfig::new(name).dist(config)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_certificates_from_the_ca_talk_over_tls() {
    let cluster_ca = ca("cluster CA");
    let a = node("a@localhost", Some(tls(&cluster_ca, &cluster_ca)));
    let b = node("b@localhost", Some(tls(&cluster_ca, &cluster_ca)));
    assert_eq!(b.connect(&support::addr(&a)).await.unwrap(), "a@localhost");
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink = a.spawn::<String, _, _>(move |mut ctx| async move {
        if let Received::Msg(m) = ctx.recv().await {
            tx.send(m).unwrap();
        }
    });
    sink.enable_remote();
    a.register("sink", sink.id()).unwrap();
    b.dist()
        .send_named_on("a@localhost", "sink", "over tls".to_string())
        .unwrap();
    assert_eq!(
        tokio::time::timeout(LIMIT, rx).await.unwrap().unwrap(),
        "over tls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_or_no_tls_is_refused() {
    let cluster_ca = ca("cluster CA");
    let rogue_ca = ca("rogue CA");
    let a = node("a@localhost", Some(tls(&cluster_ca, &cluster_ca)));
    let rogue = node("rogue@localhost", Some(tls(&rogue_ca, &cluster_ca)));
    let err = rogue.connect(&support::addr(&a)).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Tls(_) | ConnectError::Closed | ConnectError::Io(_)
        ),
        "{err}"
    );
    let plain = node("plain@localhost", None);
    assert!(plain.connect(&support::addr(&a)).await.is_err());
    assert!(a.nodes().is_empty());
    let deadline = tokio::time::Instant::now() + LIMIT;
    while a.dist().stats().handshake_failures < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            a.dist().stats()
        );
        tokio::task::yield_now().await;
    }
}
