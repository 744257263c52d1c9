//! The Landlock ruleset of the Linux helper (sandbox.md §2 step 4), through the `landlock` crate.
//!
//! Best effort up to the newest ABI the crate knows: every filesystem right the kernel handles is
//! denied except read+execute beneath `/`, full access to `/dev/null`, to the harmless or private
//! devices the caller names, and beneath each writable root; connecting to pathname unix sockets
//! (ABI 9+) only beneath the writable roots when the network is off; TCP/UDP bind and connect are
//! denied when the network is off (ABI 4+, UDP ABI 10+); signals and abstract unix sockets are
//! scoped to the sandbox (ABI 6+). A kernel without Landlock is [`LandlockError::Unavailable`],
//! naming the missing kernel option: the degraded mode refuses to run then; the namespace mode,
//! whose mounts enforce the policy on their own, warns. Carve-outs are not this module's
//! business: Landlock cannot deny a subtree of an allowed tree, so mounts make them read-only.

use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus,
    PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// The newest ABI this code was written and reviewed against; the kernel's own ABI caps it.
const NEWEST_ABI: ABI = ABI::V10;

/// Why Landlock could not be applied.
#[derive(Debug)]
pub(crate) enum LandlockError {
    /// The kernel cannot enforce Landlock at all (the text names the missing option).
    Unavailable(String),
    /// Building or applying the ruleset failed.
    Failed(String),
}

/// Restricts the calling thread (and everything it executes) to `writable_roots` and
/// `devices`, plus the network when `network` is false. Paths that do not exist are skipped:
/// nothing can be written there anyway. Returns the ABI the kernel enforced (see [`gaps_of`]).
pub(crate) fn restrict(
    writable_roots: &[PathBuf],
    devices: &[PathBuf],
    network: bool,
) -> Result<ABI, LandlockError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        LandlockError::Failed(format!("landlock: {what}: {e}"))
    };
    let all = AccessFs::from_all(NEWEST_ABI);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(|e| failed("handling filesystem rights", &e))?;
    if !network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(NEWEST_ABI))
            .map_err(|e| failed("handling network rights", &e))?;
    }
    let ruleset = ruleset
        .scope(Scope::from_all(NEWEST_ABI))
        .map_err(|e| failed("scoping signals and abstract sockets", &e))?;
    // With the network on, any pathname unix socket may be reached (local IPC is network too);
    // with it off, only those beneath the writable roots (the command's own).
    let mut read = AccessFs::from_read(NEWEST_ABI);
    if network {
        read |= AccessFs::ResolveUnix;
    }
    let mut created = ruleset
        .create()
        .map_err(|e| failed("creating the ruleset", &e))?
        .add_rule(PathBeneath::new(
            PathFd::new("/").map_err(|e| failed("opening /", &e))?,
            read,
        ))
        .map_err(|e| failed("allowing reads beneath /", &e))?;
    let dev_null = Path::new("/dev/null");
    let writable = std::iter::once(dev_null)
        .chain(devices.iter().map(PathBuf::as_path))
        .chain(writable_roots.iter().map(PathBuf::as_path));
    for path in writable {
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        let rights: BitFlags<AccessFs> = if meta.is_dir() {
            all
        } else {
            AccessFs::from_file(NEWEST_ABI)
        };
        let fd =
            PathFd::new(path).map_err(|e| failed(&format!("opening {}", path.display()), &e))?;
        created = created
            .add_rule(PathBeneath::new(fd, rights))
            .map_err(|e| failed(&format!("allowing writes beneath {}", path.display()), &e))?;
    }
    let status = created
        .restrict_self()
        .map_err(|e| failed("restricting the process", &e))?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(LandlockError::Unavailable(unavailable_message(
            &status.landlock,
        )));
    }
    Ok(match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi,
        _ => ABI::Unsupported,
    })
}

/// What Landlock at `abi` leaves unjudged that a sandbox without namespaces has no other layer
/// for (the namespaces' read-only mounts cover all of it, and seccomp the network): the text of
/// a warning, `None` when nothing is missing. Like the landlock crate's sandboxer, say when the
/// kernel gives less than the policy asks.
pub(crate) fn gaps_of(abi: ABI) -> Option<String> {
    let gaps: Vec<&str> = [(
        ABI::V3,
        "truncate(2) of files outside the writable roots (Landlock ABI 3, Linux 6.2)",
    )]
    .into_iter()
    .filter(|(needed, _)| abi < *needed)
    .map(|(_, what)| what)
    .collect();
    (!gaps.is_empty()).then(|| {
        format!(
            "this kernel's Landlock (ABI {}) does not judge {}",
            abi as i32,
            gaps.join(", ")
        )
    })
}

/// The error text for a kernel that cannot enforce Landlock, naming what is missing.
pub(crate) fn unavailable_message(status: &LandlockStatus) -> String {
    match status {
        LandlockStatus::NotEnabled => "landlock is built into this kernel but not enabled: add \
             landlock to the lsm= boot parameter (lsm=landlock,...); refusing to run the command \
             unsandboxed"
            .to_string(),
        _ => "landlock is not supported by this kernel: it needs CONFIG_SECURITY_LANDLOCK=y \
              (Linux 5.13 or newer) and lsm=landlock; refusing to run the command unsandboxed"
            .to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn older_abis_name_what_they_leave_unjudged() {
        for (abi, gap) in [
            (
                ABI::V1,
                Some("this kernel's Landlock (ABI 1) does not judge truncate(2)"),
            ),
            (
                ABI::V2,
                Some("this kernel's Landlock (ABI 2) does not judge truncate(2)"),
            ),
            (ABI::V3, None),
            (ABI::V7, None),
            (ABI::V10, None),
        ] {
            let got = gaps_of(abi);
            match gap {
                Some(start) => assert!(got.as_deref().unwrap().starts_with(start), "{got:?}"),
                None => assert_eq!(got, None),
            }
        }
    }

    #[test]
    fn unavailable_messages_name_the_kernel_option() {
        let not_built = unavailable_message(&LandlockStatus::NotImplemented);
        assert!(
            not_built.contains("CONFIG_SECURITY_LANDLOCK"),
            "{not_built}"
        );
        let not_enabled = unavailable_message(&LandlockStatus::NotEnabled);
        assert!(not_enabled.contains("lsm=landlock"), "{not_enabled}");
    }
}
