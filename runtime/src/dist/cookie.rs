//! Where a node's cookie comes from: configuration, else the environment
//! variable `CLUSTERTOP_COOKIE`, else `~/.clustertop.cookie`, which a node
//! creates with mode 0600 and a random value when absent (as
//! `~/.erlang.cookie` is).
//!
//! The cookie authenticates nodes to each other; it never crosses the wire.
//!
//! # Hygiene
//! - Surrounding whitespace (a trailing newline) is dropped from every
//!   source alike.
//! - A cookie file that its group or others may read or write is refused,
//!   with the `chmod 600` that fixes it, as Erlang refuses one.
//! - Only a node that others connect to creates the file: a hidden node
//!   (a client such as `clustertop`) that finds no cookie says so and
//!   creates nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The environment variable read when no cookie is configured.
pub const COOKIE_ENV: &str = "CLUSTERTOP_COOKIE";
/// The file read (or created) when neither config nor environment set one.
pub const COOKIE_FILE: &str = ".clustertop.cookie";

/// A shared secret. Its `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Cookie(String);

impl Cookie {
    /// A cookie from a string.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Cookie(value.into())
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Resolves the cookie: `configured`, else `$CLUSTERTOP_COOKIE`, else the
    /// cookie file in the home directory, created if absent when `create`.
    ///
    /// # Errors
    /// [`CookieError`]: the file cannot be read or created, is open to
    /// others, is missing (and `create` is false), or a cookie is empty.
    pub(crate) fn resolve(configured: Option<&str>, create: bool) -> Result<Cookie, CookieError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Cookie::resolve_from(configured, std::env::var(COOKIE_ENV).ok(), home, create)
    }

    fn resolve_from(
        configured: Option<&str>,
        env: Option<String>,
        home: Option<PathBuf>,
        create: bool,
    ) -> Result<Cookie, CookieError> {
        if let Some(c) = configured {
            return Cookie::checked(c, "configuration");
        }
        if let Some(c) = env {
            return Cookie::checked(&c, COOKIE_ENV);
        }
        let home = home.ok_or(CookieError::NoHome)?;
        Cookie::from_file(&home.join(COOKIE_FILE), create)
    }

    /// Reads the cookie file at `path`; when it does not exist and
    /// `create`, creates it (mode 0600, 20 random uppercase letters, as
    /// Erlang does).
    ///
    /// # Errors
    /// If the file cannot be read or created, is open to its group or
    /// others, is missing (without `create`), or is empty.
    pub(crate) fn from_file(path: &Path, create: bool) -> Result<Cookie, CookieError> {
        match fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                Cookie::checked(&text, &path.display().to_string())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                let value = random_cookie()?;
                write_private(path, &value).map_err(|e| CookieError::Io(path.to_owned(), e))?;
                Ok(Cookie(value))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(CookieError::Missing(path.to_owned()))
            }
            Err(e) => Err(CookieError::Io(path.to_owned(), e)),
        }
    }

    /// The cookie in `value`, without surrounding whitespace.
    fn checked(value: &str, source: &str) -> Result<Cookie, CookieError> {
        let value = value.trim();
        if value.is_empty() {
            Err(CookieError::Empty(source.to_owned()))
        } else {
            Ok(Cookie(value.to_owned()))
        }
    }
}

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookie(<hidden>)")
    }
}

/// A new random cookie, as a node writes into a cookie file it creates (20
/// uppercase letters, as Erlang's).
///
/// # Errors
/// [`CookieError::Random`] when the OS has no randomness to give.
pub fn random_cookie() -> Result<String, CookieError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| CookieError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| char::from(b'A' + b % 26)).collect())
}

/// Refuses a cookie file its group or others may read or write.
fn check_private(path: &Path) -> Result<(), CookieError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| CookieError::Io(path.to_owned(), e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(CookieError::NotPrivate {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
    }
    Ok(())
}

fn write_private(path: &Path, value: &str) -> io::Result<()> {
    use std::io::Write;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(value.as_bytes())
}

/// The cookie could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum CookieError {
    /// No `HOME` to find the cookie file in.
    #[error("no cookie configured, {COOKIE_ENV} unset, and no HOME for {COOKIE_FILE}")]
    NoHome,
    /// The cookie (from the named source) is empty.
    #[error("the cookie from {0} is empty")]
    Empty(String),
    /// The cookie file could not be read or written.
    #[error("cookie file {0}: {1}")]
    Io(PathBuf, #[source] io::Error),
    /// The cookie file is open to its group or others.
    #[error(
        "cookie file {} may be read by others (mode {mode:o}); run: chmod 600 {}",
        path.display(),
        path.display()
    )]
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// No cookie anywhere, and this node (a client) does not create one.
    #[error(
        "no cookie: set --cookie or {COOKIE_ENV}, or create {} (mode 0600) with the cluster's cookie",
        .0.display()
    )]
    Missing(PathBuf),
    /// No randomness for a new cookie.
    #[error("no randomness for a new cookie: {0}")]
    Random(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_cookie_wins() {
        assert_eq!(
            Cookie::resolve(Some("abc"), false).unwrap(),
            Cookie::new("abc")
        );
        assert!(matches!(
            Cookie::resolve(Some(""), false),
            Err(CookieError::Empty(_))
        ));
    }

    #[test]
    fn file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(COOKIE_FILE);
        let first = Cookie::from_file(&path, true).unwrap();
        assert_eq!(first.as_bytes().len(), 20);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(Cookie::from_file(&path, false).unwrap(), first);
        fs::write(&path, "  spaced\n").unwrap();
        assert_eq!(
            Cookie::from_file(&path, false).unwrap(),
            Cookie::new("spaced")
        );
        assert_eq!(format!("{first:?}"), "Cookie(<hidden>)");
    }

    #[test]
    fn a_cookie_file_others_may_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(COOKIE_FILE);
        fs::write(&path, "SECRET\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = Cookie::from_file(&path, true).unwrap_err();
        assert!(
            matches!(e, CookieError::NotPrivate { mode: 0o644, .. }),
            "{e}"
        );
        let line = e.to_string();
        assert!(
            line.contains(&format!("chmod 600 {}", path.display())),
            "{line}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            Cookie::from_file(&path, false).unwrap(),
            Cookie::new("SECRET")
        );
    }

    #[test]
    fn the_environment_is_trimmed_like_the_file() {
        let from_env = Cookie::resolve_from(None, Some("SECRET\n".into()), None, false);
        assert_eq!(from_env.unwrap(), Cookie::new("SECRET"));
        assert!(matches!(
            Cookie::resolve_from(None, Some(" \n".into()), None, false),
            Err(CookieError::Empty(_))
        ));
    }

    #[test]
    fn a_client_finds_no_cookie_and_creates_none() {
        let dir = tempfile::tempdir().unwrap();
        let e = Cookie::resolve_from(None, None, Some(dir.path().to_owned()), false).unwrap_err();
        assert!(matches!(e, CookieError::Missing(_)), "{e}");
        assert!(e.to_string().contains(COOKIE_ENV), "{e}");
        assert!(!dir.path().join(COOKIE_FILE).exists());
        // A node does create it.
        Cookie::resolve_from(None, None, Some(dir.path().to_owned()), true).unwrap();
        assert!(dir.path().join(COOKIE_FILE).exists());
    }
}
