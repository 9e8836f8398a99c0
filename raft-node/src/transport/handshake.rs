//! The connection handshake (wire layout in the module docs of [`crate::transport`]): the hello codec,
//! the HMAC proofs, the acceptor's pure decision, the two async sides, and the session's frame keys.

use std::fmt;
use std::io;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{self, FrameError, FrameKey};

pub(crate) const MAGIC: [u8; 4] = *b"KVSR";
/// The wire version: 1 had no frame tags; 2 tags every frame with the session's keys.
pub(crate) const VERSION: u8 = 2;
pub(crate) const NONCE: usize = 32;
const TAG: usize = 32;
pub(crate) const CHALLENGE: usize = MAGIC.len() + 1 + NONCE;
/// Largest hello (body and tag) accepted.
pub(crate) const MAX_HELLO: usize = 4096;
/// Longest string field (cluster id, advertised addresses); three of them fit in `MAX_HELLO`.
pub(crate) const MAX_FIELD: usize = 1024;
const HELLO_LABEL: &[u8] = b"kvs-raft/2 hello";
const WELCOME_LABEL: &[u8] = b"kvs-raft/2 welcome";
const SESSION_LABEL: &[u8] = b"kvs-raft/2 session";
const DIALER_TO_ACCEPTOR: &[u8] = b"dialer to acceptor";
const ACCEPTOR_TO_DIALER: &[u8] = b"acceptor to dialer";
const ACCEPTED: u8 = 0;

/// What a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Raft = 1,
    Snapshot = 2,
}

/// The dialer's hello, without its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    pub kind: Kind,
    pub cluster_id: String,
    pub sender: u64,
    pub receiver: u64,
    pub advertise_peer: String,
    pub advertise_client: String,
    pub nonce: [u8; NONCE],
}

/// Why an acceptor refused a hello; the byte is sent to the dialer before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    Malformed = 1,
    Cluster = 2,
    Proof = 3,
    Receiver = 4,
    Removed = 5,
    UnknownId = 6,
    /// Peer TLS is on and the sender's certificate does not name `node-<sender>`.
    Identity = 7,
}

impl Reject {
    fn from_code(code: u8) -> Option<Reject> {
        [
            Reject::Malformed,
            Reject::Cluster,
            Reject::Proof,
            Reject::Receiver,
            Reject::Removed,
            Reject::UnknownId,
            Reject::Identity,
        ]
        .into_iter()
        .find(|r| *r as u8 == code)
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reject::Malformed => "malformed hello",
            Reject::Cluster => "wrong cluster id",
            Reject::Proof => "bad proof (wrong secret)",
            Reject::Receiver => "meant for another node",
            Reject::Removed => "sender was removed from the group",
            Reject::UnknownId => "sender is not a member",
            Reject::Identity => "the sender's TLS certificate does not name its id (node-<id>)",
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Lengths are validated with the configuration (`MAX_FIELD` < 2^16); clamp defensively anyway.
    let len = u16::try_from(s.len().min(MAX_FIELD)).unwrap_or(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_be_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::from(self.u16()?);
        if len > MAX_FIELD {
            return None;
        }
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

impl Hello {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        put_str(&mut out, &self.cluster_id);
        out.extend_from_slice(&self.sender.to_be_bytes());
        out.extend_from_slice(&self.receiver.to_be_bytes());
        put_str(&mut out, &self.advertise_peer);
        put_str(&mut out, &self.advertise_client);
        out.extend_from_slice(&self.nonce);
        out
    }

    pub(crate) fn decode(body: &[u8]) -> Option<Hello> {
        let mut c = Cursor(body);
        if c.take(MAGIC.len())? != MAGIC || c.u8()? != VERSION {
            return None;
        }
        let kind = match c.u8()? {
            1 => Kind::Raft,
            2 => Kind::Snapshot,
            _ => return None,
        };
        let hello = Hello {
            kind,
            cluster_id: c.string()?,
            sender: c.u64()?,
            receiver: c.u64()?,
            advertise_peer: c.string()?,
            advertise_client: c.string()?,
            nonce: c.take(NONCE)?.try_into().ok()?,
        };
        c.0.is_empty().then_some(hello)
    }
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The dialer's proof: binds the acceptor's fresh nonce and every hello field.
pub(crate) fn hello_tag(secret: &[u8], challenge_nonce: &[u8], body: &[u8]) -> [u8; TAG] {
    mac(secret, &[HELLO_LABEL, challenge_nonce, body])
        .finalize()
        .into_bytes()
        .into()
}

fn hello_tag_ok(secret: &[u8], challenge_nonce: &[u8], body: &[u8], tag: &[u8]) -> bool {
    mac(secret, &[HELLO_LABEL, challenge_nonce, body])
        .verify_slice(tag)
        .is_ok()
}

/// The acceptor's proof: binds the dialer's fresh nonce and the hello it accepted.
fn welcome_tag(secret: &[u8], dialer_nonce: &[u8], hello_tag: &[u8]) -> [u8; TAG] {
    mac(secret, &[WELCOME_LABEL, dialer_nonce, hello_tag])
        .finalize()
        .into_bytes()
        .into()
}

fn welcome_tag_ok(secret: &[u8], dialer_nonce: &[u8], hello_tag: &[u8], tag: &[u8]) -> bool {
    mac(secret, &[WELCOME_LABEL, dialer_nonce, hello_tag])
        .verify_slice(tag)
        .is_ok()
}

/// The two frame keys of one connection, derived from the secret, both nonces and the hello's proof.
pub(crate) struct Session {
    pub send: FrameKey,
    pub recv: FrameKey,
}

fn direction_keys(
    secret: &[u8],
    challenge_nonce: &[u8],
    dialer_nonce: &[u8],
    hello_tag: &[u8],
) -> (FrameKey, FrameKey) {
    let session: [u8; TAG] = mac(
        secret,
        &[SESSION_LABEL, challenge_nonce, dialer_nonce, hello_tag],
    )
    .finalize()
    .into_bytes()
    .into();
    let key = |label: &[u8]| {
        let k: [u8; TAG] = mac(&session, &[label]).finalize().into_bytes().into();
        FrameKey::new(&k)
    };
    (key(DIALER_TO_ACCEPTOR), key(ACCEPTOR_TO_DIALER))
}

/// Who this node is, for checking hellos.
pub(crate) struct Local<'a> {
    pub cluster_id: &'a str,
    pub node_id: u64,
    pub secret: &'a [u8],
}

/// Membership of a sender id at the time of the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    Member,
    Removed,
    Unknown,
}

/// The acceptor's decision on a well-formed hello. Pure; the checks run in the documented order.
/// `identity_ok`: the TLS certificate (if peer TLS is on) names the claimed sender.
pub(crate) fn decide(
    local: &Local<'_>,
    hello: &Hello,
    proof_ok: bool,
    identity_ok: bool,
    standing: Standing,
) -> Result<(), Reject> {
    if hello.cluster_id != local.cluster_id {
        Err(Reject::Cluster)
    } else if !proof_ok {
        Err(Reject::Proof)
    } else if !identity_ok {
        Err(Reject::Identity)
    } else if hello.receiver != local.node_id {
        Err(Reject::Receiver)
    } else if standing == Standing::Removed {
        Err(Reject::Removed)
    } else if standing == Standing::Unknown {
        Err(Reject::UnknownId)
    } else {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AcceptError {
    /// Refused; `sender` is the id the hello claimed, if it was readable.
    #[error("{reason}")]
    Rejected { reason: Reject, sender: Option<u64> },
    #[error("i/o during handshake: {0}")]
    Io(#[from] io::Error),
    #[error("TLS handshake: {0}")]
    Tls(io::Error),
}

/// The acceptor's side. `standing` looks the sender up at decision time; `identity` says whether the
/// connection's TLS certificate (if any) may speak for the claimed sender id.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &Local<'_>,
    standing: impl FnOnce(u64) -> Standing,
    identity: impl FnOnce(u64) -> bool,
) -> Result<(Hello, Session), AcceptError> {
    let mut nonce = [0u8; NONCE];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mut challenge = Vec::with_capacity(CHALLENGE);
    challenge.extend_from_slice(&MAGIC);
    challenge.push(VERSION);
    challenge.extend_from_slice(&nonce);
    stream.write_all(&challenge).await?;

    let mut buf = Vec::new();
    let malformed = AcceptError::Rejected {
        reason: Reject::Malformed,
        sender: None,
    };
    let hello_and_tag = match frame::read_plain(stream, MAX_HELLO, &mut buf).await {
        Ok(true) if buf.len() > TAG => buf.split_at(buf.len() - TAG),
        Ok(_)
        | Err(FrameError::TooLarge { .. } | FrameError::Truncated | FrameError::BadTag { .. }) => {
            let _ = stream.write_all(&[Reject::Malformed as u8]).await;
            return Err(malformed);
        }
        Err(FrameError::Io(e)) => return Err(e.into()),
    };
    let (body, tag) = hello_and_tag;
    let Some(hello) = Hello::decode(body) else {
        let _ = stream.write_all(&[Reject::Malformed as u8]).await;
        return Err(malformed);
    };
    let proof_ok = hello_tag_ok(local.secret, &nonce, body, tag);
    let identity_ok = identity(hello.sender);
    if let Err(reason) = decide(local, &hello, proof_ok, identity_ok, standing(hello.sender)) {
        let _ = stream.write_all(&[reason as u8]).await;
        return Err(AcceptError::Rejected {
            reason,
            sender: Some(hello.sender),
        });
    }
    let mut welcome = Vec::with_capacity(1 + TAG);
    welcome.push(ACCEPTED);
    welcome.extend_from_slice(&welcome_tag(local.secret, &hello.nonce, tag));
    stream.write_all(&welcome).await?;
    stream.flush().await?;
    let (recv, send) = direction_keys(local.secret, &nonce, &hello.nonce, tag);
    Ok((hello, Session { send, recv }))
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("the peer does not speak this protocol (bad challenge)")]
    BadChallenge,
    #[error(
        "the peer speaks peer wire version {0}, this node {VERSION}: every node of a site must run a \
         release with the same wire version"
    )]
    Version(u8),
    #[error("rejected by the peer: {0}")]
    Rejected(Reject),
    #[error("rejected by the peer (unknown reason {0})")]
    RejectedUnknown(u8),
    #[error("the peer's proof is wrong (it does not hold the shared secret)")]
    BadProof,
}

impl DialError {
    /// A configuration problem on one side (as opposed to the network or a peer being down).
    pub(crate) fn is_misconfiguration(&self) -> bool {
        !matches!(self, DialError::Io(_))
    }
}

/// What the dialer says about itself.
pub(crate) struct Me<'a> {
    pub cluster_id: &'a str,
    pub node_id: u64,
    pub secret: &'a [u8],
    pub advertise_peer: &'a str,
    pub advertise_client: &'a str,
}

/// The dialer's side: prove ourselves to `receiver` and check its proof.
pub(crate) async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    me: &Me<'_>,
    receiver: u64,
    kind: Kind,
) -> Result<Session, DialError> {
    let mut challenge = [0u8; CHALLENGE];
    stream.read_exact(&mut challenge).await?;
    if challenge[..MAGIC.len()] != MAGIC {
        return Err(DialError::BadChallenge);
    }
    if challenge[MAGIC.len()] != VERSION {
        return Err(DialError::Version(challenge[MAGIC.len()]));
    }
    let challenge_nonce = &challenge[MAGIC.len() + 1..];
    let mut nonce = [0u8; NONCE];
    rand::thread_rng().fill_bytes(&mut nonce);
    let body = Hello {
        kind,
        cluster_id: me.cluster_id.to_string(),
        sender: me.node_id,
        receiver,
        advertise_peer: me.advertise_peer.to_string(),
        advertise_client: me.advertise_client.to_string(),
        nonce,
    }
    .encode();
    let tag = hello_tag(me.secret, challenge_nonce, &body);
    let Some(header) = frame::header(body.len() + TAG, MAX_HELLO) else {
        return Err(DialError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "hello too large",
        )));
    };
    let mut hello = Vec::with_capacity(frame::HEADER + body.len() + TAG);
    hello.extend_from_slice(&header);
    hello.extend_from_slice(&body);
    hello.extend_from_slice(&tag);
    stream.write_all(&hello).await?;
    stream.flush().await?;

    let mut status = [0u8; 1];
    stream.read_exact(&mut status).await?;
    if status[0] != ACCEPTED {
        return Err(Reject::from_code(status[0])
            .map_or(DialError::RejectedUnknown(status[0]), DialError::Rejected));
    }
    let mut welcome = [0u8; TAG];
    stream.read_exact(&mut welcome).await?;
    if !welcome_tag_ok(me.secret, &nonce, &tag, &welcome) {
        return Err(DialError::BadProof);
    }
    let (send, recv) = direction_keys(me.secret, challenge_nonce, &nonce, &tag);
    Ok(Session { send, recv })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            kind: Kind::Snapshot,
            cluster_id: "site-1".into(),
            sender: 2,
            receiver: 1,
            advertise_peer: "10.0.0.2:7000".into(),
            advertise_client: "10.0.0.2:8080".into(),
            nonce: [7; NONCE],
        }
    }

    #[test]
    fn hello_round_trips_and_rejects_trailing_or_short_input() {
        let h = hello();
        let body = h.encode();
        assert_eq!(Hello::decode(&body), Some(h));
        assert_eq!(Hello::decode(&body[..body.len() - 1]), None);
        let mut long = body.clone();
        long.push(0);
        assert_eq!(Hello::decode(&long), None);
        let mut bad_magic = body;
        bad_magic[0] ^= 1;
        assert_eq!(Hello::decode(&bad_magic), None);
    }

    #[test]
    fn proofs_bind_secret_nonce_and_every_field() {
        let body = hello().encode();
        let tag = hello_tag(b"s", &[1; NONCE], &body);
        assert!(hello_tag_ok(b"s", &[1; NONCE], &body, &tag));
        assert!(!hello_tag_ok(b"t", &[1; NONCE], &body, &tag));
        assert!(!hello_tag_ok(b"s", &[2; NONCE], &body, &tag));
        let mut other = hello();
        other.receiver = 3;
        assert!(!hello_tag_ok(b"s", &[1; NONCE], &other.encode(), &tag));
        let w = welcome_tag(b"s", &[3; NONCE], &tag);
        assert!(welcome_tag_ok(b"s", &[3; NONCE], &tag, &w));
        assert!(!welcome_tag_ok(b"", &[3; NONCE], &tag, &w));
    }

    #[test]
    fn decision_checks_in_order() {
        let local = Local {
            cluster_id: "site-1",
            node_id: 1,
            secret: b"s",
        };
        let h = hello();
        assert_eq!(decide(&local, &h, true, true, Standing::Member), Ok(()));
        let other_cluster = Hello {
            cluster_id: "site-2".into(),
            ..hello()
        };
        assert_eq!(
            decide(&local, &other_cluster, false, false, Standing::Unknown),
            Err(Reject::Cluster)
        );
        assert_eq!(
            decide(&local, &h, false, false, Standing::Unknown),
            Err(Reject::Proof)
        );
        assert_eq!(
            decide(&local, &h, true, false, Standing::Removed),
            Err(Reject::Identity)
        );
        let elsewhere = Hello {
            receiver: 9,
            ..hello()
        };
        assert_eq!(
            decide(&local, &elsewhere, true, true, Standing::Removed),
            Err(Reject::Receiver)
        );
        assert_eq!(
            decide(&local, &h, true, true, Standing::Removed),
            Err(Reject::Removed)
        );
        assert_eq!(
            decide(&local, &h, true, true, Standing::Unknown),
            Err(Reject::UnknownId)
        );
    }

    #[tokio::test]
    async fn both_sides_agree_and_a_wrong_secret_fails_on_both_sides() {
        for (dialer_secret, ok) in [(&b"s"[..], true), (b"wrong", false)] {
            let (mut a, mut d) = tokio::io::duplex(1024);
            let local = Local {
                cluster_id: "site-1",
                node_id: 1,
                secret: b"s",
            };
            let me = Me {
                cluster_id: "site-1",
                node_id: 2,
                secret: dialer_secret,
                advertise_peer: "p",
                advertise_client: "c",
            };
            let (accepted, dialed) = tokio::join!(
                accept(&mut a, &local, |_| Standing::Member, |_| true),
                dial(&mut d, &me, 1, Kind::Raft)
            );
            if ok {
                let (h, mut acceptor) = accepted.unwrap();
                assert_eq!(
                    (h.sender, h.kind, h.advertise_client.as_str()),
                    (2, Kind::Raft, "c")
                );
                let mut dialer = dialed.unwrap();
                // Both sides derived the same keys, one per direction.
                let header = [0, 0, 0, 1];
                let t = dialer.send.tag(&header, &[b"x"]);
                acceptor.recv.check(&header, b"x", &t).unwrap();
                let t = acceptor.send.tag(&header, &[b"y"]);
                dialer.recv.check(&header, b"y", &t).unwrap();
                let t = dialer.send.tag(&header, &[b"x"]);
                assert!(acceptor.send.check(&header, b"x", &t).is_err());
            } else {
                assert!(matches!(
                    accepted,
                    Err(AcceptError::Rejected {
                        reason: Reject::Proof,
                        sender: Some(2)
                    })
                ));
                assert!(matches!(dialed, Err(DialError::Rejected(Reject::Proof))));
            }
        }
    }
}
