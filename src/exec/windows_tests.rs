//! Process control on Windows: the FFI structure layout and the exit-status mapping.

use super::*;

#[test]
fn job_limit_structure_has_the_documented_size() {
    // JOBOBJECT_EXTENDED_LIMIT_INFORMATION is 144 bytes on 64-bit Windows.
    #[cfg(target_pointer_width = "64")]
    assert_eq!(std::mem::size_of::<ExtendedLimitInformation>(), 144);
}

#[test]
fn killed_leaders_report_the_kill_signal() {
    use std::os::windows::process::ExitStatusExt;
    let killed = ExitStatus::from_raw(KILLED_EXIT_CODE);
    assert_eq!(exit_parts(killed, true), (None, Some(KILLED_SIGNAL)));
    assert_eq!(exit_parts(killed, false), (Some(137), None));
    assert_eq!(exit_parts(ExitStatus::from_raw(3), true), (Some(3), None));
    assert_eq!(status_code(ExitStatus::from_raw(3)), 3);
}
