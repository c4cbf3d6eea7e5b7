//! Pids between the BEAM's form and the attach protocol's: one home for
//! the conversions every part of the source makes.

use clustertop_proto::PidRef;
use eetf::Pid;

/// The serial a BEAM pid takes in [`PidRef`]: its number, with the
/// (nearly always 0) serial above it, so `<0.123.0>` shows as 123.
pub(crate) fn serial_of(pid: &Pid) -> u64 {
    u64::from(pid.id) | u64::from(pid.serial) << 32
}

/// The BEAM pid of a [`PidRef`] on its node.
pub(crate) fn pid_of(p: &PidRef) -> Pid {
    Pid::new(
        p.node.as_str(),
        p.serial as u32,
        (p.serial >> 32) as u32,
        p.creation,
    )
}

/// The [`PidRef`] of a BEAM pid.
pub(crate) fn pid_ref(p: &Pid) -> PidRef {
    PidRef {
        node: p.node.name.clone(),
        serial: serial_of(p),
        creation: p.creation,
    }
}

/// `<0.123.0>`, as the process's own node prints it.
pub(crate) fn erlang_pid(p: &Pid) -> String {
    format!("<0.{}.{}>", p.id, p.serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_goes_there_and_back() {
        let p = Pid::new("a@host", 123, 2, 7);
        let r = pid_ref(&p);
        assert_eq!((r.serial, r.creation), (123 | 2 << 32, 7));
        assert_eq!(pid_of(&r), p);
        assert_eq!(erlang_pid(&p), "<0.123.2>");
    }
}
