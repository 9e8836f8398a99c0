//! Client authentication (SPEC §9): bearer tokens with three roles, from a token file that holds only
//! their SHA-256 hashes, reloadable while the node runs.
//!
//! * **Roles** are ordered: [`Role::Read`] < [`Role::Write`] < [`Role::Admin`]; a token passes a route
//!   that needs its role or a smaller one. What each route needs is declared once, in
//!   [`super::routes::ROUTES`] ([`Access`]).
//! * **The token file** has one token per line, `NAME ROLE sha256:HEX` (64 hex digits), plus blank lines
//!   and `#` comments. Names are 1-64 of `[A-Za-z0-9._-]` and unique; so are hashes. A malformed file is
//!   refused as a whole, naming the line. Tokens are random 256-bit secrets (`kvs-raft token create`), so
//!   one SHA-256 is enough to keep them unusable from the file: there is nothing to guess that a slow,
//!   salted hash would protect (those are for passwords, which people choose).
//! * **Checking** a presented token hashes it and compares the hash with every entry in constant time
//!   ([`subtle`]), without an early exit, so the time taken says nothing about which bytes matched.
//! * **Never logged**: [`Tokens`]' `Debug` shows names and roles only, a presented token is never put in
//!   a log field or an error message, and the request's `Authorization` header is marked sensitive
//!   (`HeaderValue::set_sensitive`), so a `Debug` of the request's headers prints `Sensitive` instead.
//! * **Reload** ([`Auth::reload`], on SIGHUP): a file that does not load keeps the tokens in force and
//!   logs why.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use warp::http::{header, HeaderMap};

/// What a token may do. Each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The read routes: key, scan, entity and checkpoint reads, `GET /v1/cluster`, `GET /v1/sync`.
    Read,
    /// Also the write routes: put, delete, incr, checkpoint, txn, batch.
    Write,
    /// Also the administration routes: membership changes, leader transfer (and later snapshot and
    /// sync control).
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Read, Role::Write, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, always (`/healthz`, `/readyz`: supervisors and load balancers probe them).
    Open,
    /// `/metrics`: open or a read token, as configured ([`MetricsAccess`]).
    Metrics,
    /// A token with this role or a larger one.
    Token(Role),
}

/// Whether `/metrics` needs a token when auth is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Open, as etcd serves `/metrics` and as Prometheus exporters do: counters and latencies, no data.
    #[default]
    Open,
    /// A token with the read role or more (Prometheus: `authorization: credentials_file:`).
    Read,
}

impl MetricsAccess {
    pub fn name(self) -> &'static str {
        match self {
            MetricsAccess::Open => "open",
            MetricsAccess::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Option<MetricsAccess> {
        [MetricsAccess::Open, MetricsAccess::Read]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// The SHA-256 of a token.
pub type TokenHash = [u8; 32];

/// The prefix of a hash in the token file.
const HASH_PREFIX: &str = "sha256:";
/// The prefix of tokens made by `kvs-raft token create` (so a leaked one is recognisable in a scan).
pub const TOKEN_PREFIX: &str = "kvs_";
/// A presented token longer than this is refused without hashing.
const MAX_TOKEN_BYTES: usize = 1024;

pub fn hash_token(token: &[u8]) -> TokenHash {
    Sha256::digest(token).into()
}

/// One line of the token file.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    hash: TokenHash,
}

impl TokenEntry {
    pub fn new(name: &str, role: Role, token: &[u8]) -> TokenEntry {
        TokenEntry {
            name: name.to_owned(),
            role,
            hash: hash_token(token),
        }
    }

    /// The entry as a line of the token file.
    pub fn line(&self) -> String {
        format!(
            "{} {} {HASH_PREFIX}{}",
            self.name,
            self.role,
            hex(&self.hash)
        )
    }
}

/// The tokens of one token file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and roles only: the hashes are not secret, but nothing about tokens needs to be printed.
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|e| format!("{}:{}", e.name, e.role)),
            )
            .finish()
    }
}

/// Why a token file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFileError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("{0}")]
    File(String),
}

impl Tokens {
    pub fn from_entries(entries: Vec<TokenEntry>) -> Tokens {
        Tokens { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Parse a token file's contents (see the module docs for the format).
    pub fn parse(bytes: &[u8]) -> Result<Tokens, TokenFileError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| TokenFileError::File(format!("not UTF-8: {e}")))?;
        let mut entries = Vec::new();
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |reason: String| TokenFileError::Line { line, reason };
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = content.split_whitespace().collect();
            let [name, role, hash] = fields[..] else {
                return Err(err(format!(
                    "expected `NAME ROLE {HASH_PREFIX}HEX`, found {} fields",
                    fields.len()
                )));
            };
            if !valid_name(name) {
                return Err(err(
                    "the name must be 1 to 64 characters of A-Z a-z 0-9 . _ -".into(),
                ));
            }
            let role = Role::parse(role).ok_or_else(|| {
                err(format!(
                    "unknown role {role:?}: expected read, write or admin"
                ))
            })?;
            let hash = hash
                .strip_prefix(HASH_PREFIX)
                .and_then(unhex)
                .ok_or_else(|| {
                    err(format!(
                        "the hash must be {HASH_PREFIX} and 64 hex digits (make lines with \
                         `kvs-raft token create`)"
                    ))
                })?;
            if !names.insert(name.to_owned()) {
                return Err(err(format!("the name {name:?} appears twice")));
            }
            if !hashes.insert(hash) {
                return Err(err("the same token appears twice".into()));
            }
            entries.push(TokenEntry {
                name: name.to_owned(),
                role,
                hash,
            });
        }
        Ok(Tokens { entries })
    }

    /// The entry of the presented token, comparing its hash with every entry in constant time.
    pub fn find(&self, token: &[u8]) -> Option<&TokenEntry> {
        let presented = hash_token(token);
        let mut found = None;
        for e in &self.entries {
            // No early exit: every entry is compared, whatever matched.
            if bool::from(e.hash.ct_eq(&presented)) {
                found = Some(e);
            }
        }
        found
    }
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<TokenHash> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A new random token (256 bits from the OS) in its text form.
pub fn new_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    )
}

/// Whether the token file's permissions are acceptable: refused when others than its owner may write
/// it (they could add an admin token); a warning when everyone may read it (the hashes do not reveal
/// the tokens, but names and roles need not be public).
pub fn check_permissions(path: &Path) -> Result<Option<String>, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read its metadata: {e}"))?;
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(format!(
            "its mode {:o} lets others than its owner write it, and so add an admin token: \
             chmod go-w (e.g. chmod 600)",
            mode & 0o777
        ));
    }
    Ok((mode & 0o004 != 0).then(|| {
        format!(
            "its mode {:o} lets every user read it; chmod o-r (e.g. chmod 600) is advised",
            mode & 0o777
        )
    }))
}

/// Read, check and parse a token file on disk.
pub fn load_file(path: &Path) -> Result<Tokens, String> {
    if let Some(warning) = check_permissions(path)? {
        tracing::warn!(file = %path.display(), "token file: {warning}");
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    Tokens::parse(&bytes).map_err(|e| e.to_string())
}

/// The client API's authentication: off, or the tokens of one file. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Auth {
    tokens: Option<Arc<TokenStore>>,
    pub metrics: MetricsAccess,
}

struct TokenStore {
    path: PathBuf,
    current: RwLock<Arc<Tokens>>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tokens {
            None => f.write_str("Auth(off)"),
            Some(s) => write!(
                f,
                "Auth({}, {} tokens, metrics {})",
                s.path.display(),
                s.snapshot().len(),
                self.metrics.name()
            ),
        }
    }
}

impl TokenStore {
    fn snapshot(&self) -> Arc<Tokens> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A header that is not one well-formed bearer token, or a token the file does not hold.
    Invalid,
    /// A known token whose role is too small.
    Forbidden {
        name: String,
        role: Role,
        needed: Role,
    },
}

impl Auth {
    /// No authentication: every route is open.
    pub fn off() -> Auth {
        Auth::default()
    }

    /// The tokens loaded from `path` (already parsed at start); [`Auth::reload`] reads `path` again.
    pub fn with_tokens(path: PathBuf, tokens: Tokens, metrics: MetricsAccess) -> Auth {
        Auth {
            tokens: Some(Arc::new(TokenStore {
                path,
                current: RwLock::new(Arc::new(tokens)),
            })),
            metrics,
        }
    }

    pub fn enabled(&self) -> bool {
        self.tokens.is_some()
    }

    /// Read the token file again. A file that does not load keeps the current tokens; the error is
    /// logged and returned.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(store) = &self.tokens else {
            return Ok(0);
        };
        match load_file(&store.path) {
            Ok(tokens) => {
                let n = tokens.len();
                *store
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
                tracing::info!(file = %store.path.display(), tokens = n, "token file reloaded");
                Ok(n)
            }
            Err(e) => {
                tracing::error!(
                    file = %store.path.display(),
                    error = %e,
                    "token file not reloaded; the previous tokens stay in force"
                );
                Err(e)
            }
        }
    }

    /// Whether a request with these headers may use a route of `access`.
    pub fn check(&self, access: Access, headers: &HeaderMap) -> Result<(), Denied> {
        let Some(store) = &self.tokens else {
            return Ok(());
        };
        let needed = match access {
            Access::Open => return Ok(()),
            Access::Metrics => match self.metrics {
                MetricsAccess::Open => return Ok(()),
                MetricsAccess::Read => Role::Read,
            },
            Access::Token(role) => role,
        };
        let token = bearer(headers)?;
        let tokens = store.snapshot();
        let entry = tokens.find(token).ok_or(Denied::Invalid)?;
        if entry.role >= needed {
            Ok(())
        } else {
            Err(Denied::Forbidden {
                name: entry.name.clone(),
                role: entry.role,
                needed,
            })
        }
    }
}

/// The token of the request's one `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Result<&[u8], Denied> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Denied::Missing);
    };
    if values.next().is_some() {
        return Err(Denied::Invalid);
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = match bytes.iter().position(|&b| b == b' ') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => return Err(Denied::Invalid),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(Denied::Invalid);
    }
    let token = rest.trim_ascii();
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(Denied::Invalid);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn headers(auth: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for a in auth {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    fn auth(entries: &[(&str, Role, &str)], metrics: MetricsAccess) -> Auth {
        let tokens = Tokens::from_entries(
            entries
                .iter()
                .map(|(n, r, t)| TokenEntry::new(n, *r, t.as_bytes()))
                .collect(),
        );
        Auth::with_tokens(PathBuf::from("/nonexistent"), tokens, metrics)
    }

    #[test]
    fn a_file_line_round_trips() {
        let e = TokenEntry::new("ci-bot", Role::Write, b"kvs_secret");
        let line = e.line();
        assert!(line.starts_with("ci-bot write sha256:"), "{line}");
        assert!(!line.contains("kvs_secret"));
        let parsed = Tokens::parse(format!("# tokens\n\n  {line}  \n").as_bytes()).unwrap();
        assert_eq!(parsed, Tokens::from_entries(vec![e]));
        assert_eq!(
            parsed.find(b"kvs_secret").map(|e| e.role),
            Some(Role::Write)
        );
        assert!(parsed.find(b"kvs_secreT").is_none());
    }

    #[test]
    fn malformed_files_are_refused_with_their_line() {
        let good = TokenEntry::new("a", Role::Read, b"t1").line();
        let other = TokenEntry::new("b", Role::Read, b"t2").line();
        let same_token = TokenEntry::new("c", Role::Admin, b"t1").line();
        let cases: Vec<(String, usize, &str)> = vec![
            (format!("{good}\nb read"), 2, "found 2 fields"),
            (
                format!("{good}\nb read sha256:00 extra"),
                2,
                "found 4 fields",
            ),
            (format!("# c\nb reader {}", &other[7..]), 2, "unknown role"),
            ("b read sha256:xyz".into(), 1, "64 hex digits"),
            (format!("b read md5:{}", "0".repeat(64)), 1, "64 hex digits"),
            (
                format!("b read sha256:{}", "g".repeat(64)),
                1,
                "64 hex digits",
            ),
            (format!("b/c read sha256:{}", "0".repeat(64)), 1, "the name"),
            (format!("{good}\n{}", good.replace("t1", "x")), 2, "twice"),
            (format!("{good}\n\n{same_token}"), 3, "same token"),
        ];
        for (text, line, why) in cases {
            match Tokens::parse(text.as_bytes()) {
                Err(TokenFileError::Line { line: l, reason }) => {
                    assert_eq!(l, line, "{text:?}: {reason}");
                    assert!(reason.contains(why), "{text:?}: {reason}");
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        assert!(matches!(
            Tokens::parse(b"\xff"),
            Err(TokenFileError::File(_))
        ));
        // The duplicate name line really is a duplicate name (the hash above differs).
        assert!(Tokens::parse(format!("{good}\n{other}").as_bytes()).is_ok());
    }

    #[test]
    fn roles_include_the_smaller_ones() {
        let a = auth(
            &[
                ("r", Role::Read, "tr"),
                ("w", Role::Write, "tw"),
                ("a", Role::Admin, "ta"),
            ],
            MetricsAccess::Open,
        );
        for (token, role) in [("tr", Role::Read), ("tw", Role::Write), ("ta", Role::Admin)] {
            for needed in Role::ALL {
                let got = a.check(
                    Access::Token(needed),
                    &headers(&[&format!("Bearer {token}")]),
                );
                if role >= needed {
                    assert_eq!(got, Ok(()), "{token} for {needed}");
                } else {
                    assert_eq!(
                        got,
                        Err(Denied::Forbidden {
                            name: token[1..].into(),
                            role,
                            needed
                        })
                    );
                }
            }
        }
        assert_eq!(a.check(Access::Open, &headers(&[])), Ok(()));
        assert_eq!(a.check(Access::Metrics, &headers(&[])), Ok(()));
        let strict = auth(&[("r", Role::Read, "tr")], MetricsAccess::Read);
        assert_eq!(
            strict.check(Access::Metrics, &headers(&[])),
            Err(Denied::Missing)
        );
        assert_eq!(
            strict.check(Access::Metrics, &headers(&["bearer tr"])),
            Ok(())
        );
        // Auth off: everything passes.
        assert_eq!(
            Auth::off().check(Access::Token(Role::Admin), &headers(&[])),
            Ok(())
        );
    }

    #[test]
    fn only_one_well_formed_bearer_header_counts() {
        let a = auth(&[("w", Role::Write, "tw")], MetricsAccess::Open);
        let w = Access::Token(Role::Read);
        assert_eq!(a.check(w, &headers(&[])), Err(Denied::Missing));
        for bad in [
            "tw",
            "Basic tw",
            "Bearer",
            "Bearer ",
            "Bearer tx",
            "Bearertw",
            "Token tw",
        ] {
            assert_eq!(
                a.check(w, &headers(&[bad])),
                Err(Denied::Invalid),
                "{bad:?}"
            );
        }
        assert_eq!(a.check(w, &headers(&["BEARER  tw "])), Ok(()));
        assert_eq!(
            a.check(w, &headers(&["Bearer tw", "Bearer tw"])),
            Err(Denied::Invalid)
        );
        let long = format!("Bearer {}", "x".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(a.check(w, &headers(&[&long])), Err(Denied::Invalid));
    }

    #[test]
    fn new_tokens_are_random_and_debug_never_shows_secrets() {
        let (t1, t2) = (new_token(), new_token());
        assert_ne!(t1, t2);
        assert!(
            t1.starts_with(TOKEN_PREFIX) && t1.len() == TOKEN_PREFIX.len() + 43,
            "{t1}"
        );
        let entry = TokenEntry::new("n", Role::Admin, t1.as_bytes());
        let a = Auth::with_tokens(
            "/f".into(),
            Tokens::from_entries(vec![entry.clone()]),
            MetricsAccess::Open,
        );
        let shown = format!("{a:?} {:?}", Tokens::from_entries(vec![entry.clone()]));
        assert!(
            !shown.contains(&t1) && !shown.contains(&hex(&entry.hash)),
            "{shown}"
        );
    }

    #[test]
    fn permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, TokenEntry::new("a", Role::Read, b"t").line()).unwrap();
        let chmod =
            |m| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        chmod(0o600);
        assert_eq!(check_permissions(&path), Ok(None));
        assert_eq!(load_file(&path).map(|t| t.len()), Ok(1));
        chmod(0o644);
        assert!(check_permissions(&path)
            .unwrap()
            .unwrap()
            .contains("every user read"));
        chmod(0o620);
        assert!(check_permissions(&path).unwrap_err().contains("write"));
        chmod(0o602);
        assert!(load_file(&path).unwrap_err().contains("write"));
    }
}
