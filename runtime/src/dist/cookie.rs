//! Where a node's cookie comes from: configuration, else the environment
//! variable `CLUSTERTOP_COOKIE`, else `~/.clustertop.cookie`, which is created
//! with mode 0600 and a random value when absent (as `~/.erlang.cookie` is).
//!
//! The cookie authenticates nodes to each other; it never crosses the wire.

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
    /// cookie file in the home directory (created if absent).
    ///
    /// # Errors
    /// If the cookie file cannot be read or created, or is empty.
    pub(crate) fn resolve(configured: Option<&str>) -> Result<Cookie, CookieError> {
        if let Some(c) = configured {
            return Cookie::checked(c.to_owned(), "configuration");
        }
        if let Ok(c) = std::env::var(COOKIE_ENV) {
            return Cookie::checked(c, COOKIE_ENV);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .ok_or(CookieError::NoHome)?;
        Cookie::from_file(&home.join(COOKIE_FILE))
    }

    /// Reads the cookie file at `path`, creating it (mode 0600, 20 random
    /// uppercase letters, as Erlang does) when it does not exist.
    ///
    /// # Errors
    /// If the file cannot be read or created, or is empty.
    pub(crate) fn from_file(path: &Path) -> Result<Cookie, CookieError> {
        match fs::read_to_string(path) {
            Ok(text) => Cookie::checked(text.trim().to_owned(), &path.display().to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let value = random_cookie()?;
                write_private(path, &value).map_err(|e| CookieError::Io(path.to_owned(), e))?;
                Ok(Cookie(value))
            }
            Err(e) => Err(CookieError::Io(path.to_owned(), e)),
        }
    }

    fn checked(value: String, source: &str) -> Result<Cookie, CookieError> {
        if value.is_empty() {
            Err(CookieError::Empty(source.to_owned()))
        } else {
            Ok(Cookie(value))
        }
    }
}

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookie(<hidden>)")
    }
}

fn random_cookie() -> Result<String, CookieError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| CookieError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| char::from(b'A' + b % 26)).collect())
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
    /// No randomness for a new cookie.
    #[error("no randomness for a new cookie: {0}")]
    Random(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_cookie_wins() {
        assert_eq!(Cookie::resolve(Some("abc")).unwrap(), Cookie::new("abc"));
        assert!(matches!(
            Cookie::resolve(Some("")),
            Err(CookieError::Empty(_))
        ));
    }

    #[test]
    fn file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(COOKIE_FILE);
        let first = Cookie::from_file(&path).unwrap();
        assert_eq!(first.as_bytes().len(), 20);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(Cookie::from_file(&path).unwrap(), first);
        fs::write(&path, "  spaced\n").unwrap();
        assert_eq!(Cookie::from_file(&path).unwrap(), Cookie::new("spaced"));
        assert_eq!(format!("{first:?}"), "Cookie(<hidden>)");
    }
}
