//! The Erlang cookie, found as `erl` finds it.

use crate::BeamError;
use std::path::PathBuf;

/// The environment variable read for the cookie when none is given.
pub const COOKIE_ENV: &str = "ERLANG_COOKIE";

/// The cookie to attach with: `given` (`--cookie`), else `ERLANG_COOKIE`,
/// else the first line of `~/.erlang.cookie`. Unlike `erl`, a missing
/// cookie file is never created: attaching must not write anything.
///
/// # Errors
/// [`BeamError::NoCookie`] when none is found, or the file is empty.
pub fn resolve_cookie(given: Option<&str>) -> Result<String, BeamError> {
    if let Some(c) = given {
        return Ok(c.to_owned());
    }
    if let Ok(c) = std::env::var(COOKIE_ENV) {
        if !c.is_empty() {
            return Ok(c);
        }
    }
    let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
        return Err(BeamError::NoCookie("HOME is not set".into()));
    };
    let path = home.join(".erlang.cookie");
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.lines().next().map(str::trim) {
            Some(c) if !c.is_empty() => Ok(c.to_owned()),
            _ => Err(BeamError::NoCookie(format!("{} is empty", path.display()))),
        },
        Err(e) => Err(BeamError::NoCookie(format!("{}: {e}", path.display()))),
    }
}
