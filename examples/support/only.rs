//! `--only SCENARIO CALLS`: one scenario's work, untimed, so that `scripts/instructions` can
//! count its instructions under callgrind.

/// When the program's arguments hold `--only SCENARIO CALLS`, runs `run(SCENARIO, CALLS)` and
/// returns `true` (the program then stops), or exits with status 2 when `run` did not know the
/// scenario or `CALLS` is not a number. Returns `false` without doing anything when there is no
/// `--only` (other arguments, such as the `--bench` that `cargo bench` passes, are left alone).
pub(crate) fn run_only_if_asked(run: impl FnOnce(&str, u64) -> bool) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(at) = args.iter().position(|a| a == "--only") else {
        return false;
    };
    let (Some(scenario), Some(calls)) = (args.get(at + 1), args.get(at + 2)) else {
        eprintln!("--only SCENARIO CALLS");
        std::process::exit(2);
    };
    let Ok(calls) = calls.parse() else {
        eprintln!("--only SCENARIO CALLS: CALLS is a number, not {calls:?}");
        std::process::exit(2);
    };
    if !run(scenario, calls) {
        eprintln!("unknown scenario {scenario:?}");
        std::process::exit(2);
    }
    true
}
