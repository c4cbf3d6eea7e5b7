//! Figures of the node's OS process, from `/proc` (Linux). Elsewhere they
//! read as zero.

/// Resident memory, in bytes.
pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_size())
}

/// CPU time used (user + system), in microseconds.
pub(crate) fn cpu_time_us() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The command name (field 2) may contain spaces; fields after it are
    // counted from its closing parenthesis. utime and stime are fields 14
    // and 15, in clock ticks.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let total = ticks(11) + ticks(12);
    total * 1_000_000 / clock_ticks()
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 { v as u64 } else { 4096 }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

/// Asks the kernel to back the (not yet touched) buffer of `v` with huge
/// pages where it can, when the buffer is large: a sample of a million
/// processes fills 60 MB of fresh rows, and with 4 KiB pages the page
/// faults were about 40 % of its time. A hint only: with transparent
/// huge pages off (or on always) nothing changes.
pub(crate) fn prefer_huge_pages<T>(v: &Vec<T>) {
    const HUGE: usize = 2 << 20;
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < 2 * HUGE {
        return;
    }
    let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
    let end = (v.as_ptr() as usize + bytes) & !(HUGE - 1);
    if end > start {
        #[cfg(target_os = "linux")]
        // SAFETY: the range lies inside `v`'s allocation, and
        // MADV_HUGEPAGE changes how the kernel backs it, never its
        // contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

/// Logical CPUs available to this process.
pub(crate) fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            eprintln!("skipped: no /proc on this system");
            return;
        }
        assert!(super::rss_bytes() > 1 << 20);
        let before = super::cpu_time_us();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(super::cpu_time_us() > before);
    }
}
