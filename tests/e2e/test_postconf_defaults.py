"""Differential test of the parameter registry: `postconf -d` of Postern against Debian's.

Every parameter Postern's postconf prints (that is, every registry entry) must print the
same default as Debian's Postfix 3.7, except the names listed under "## postconf -d
defaults" in tests/DIFFERENCES.md and the defaults both compute from the machine. Every
name must also be one Postfix knows, except the few Postern-only parameters listed under
"## Postern-only parameters" there.
"""
import re

from conftest import TOP, postern, postfix, run

DIFFERENCES = TOP / "tests" / "DIFFERENCES.md"

# Computed at run time from the host or the process (derived_default()), so the two
# programs may legitimately print different values.
DERIVED = {"myhostname", "mydomain", "mynetworks", "process_id", "process_name"}

# Parameters Postern adds that Postfix does not have: the names under "## Postern-only
# parameters" in tests/DIFFERENCES.md, each with the reason Postfix's vocabulary was not
# enough (read by postern_only() below).

# Debian's postconf prints one parameter per master.cf service for these suffixes
# (smtp_destination_concurrency_limit, relay_recipient_limit, ...). The registry leaves
# them to whoever reads master.cf, so they are not part of this comparison.
PER_SERVICE_SUFFIXES = (
    "_delivery_slot_cost", "_delivery_slot_discount", "_delivery_slot_loan",
    "_destination_concurrency_failed_cohort_limit", "_destination_concurrency_limit",
    "_destination_concurrency_negative_feedback",
    "_destination_concurrency_positive_feedback", "_destination_rate_delay",
    "_destination_recipient_limit", "_extra_recipient_limit",
    "_initial_destination_concurrency", "_minimum_delivery_slots", "_recipient_limit",
    "_recipient_refill_delay", "_recipient_refill_limit", "_time_limit",
    "_transport_rate_delay",
)


def listed_differences(heading="## postconf -d defaults"):
    """Names from the "- name: reason" bullets under `heading`."""
    names = set()
    in_section = False
    for line in DIFFERENCES.read_text().splitlines():
        if line.startswith("## "):
            in_section = line.strip() == heading
            continue
        m = re.match(r"- ([A-Za-z0-9_]+): \S", line)
        if in_section and m:
            names.add(m.group(1))
    return names


POSTERN_ONLY = listed_differences("## Postern-only parameters")


def parse_postconf(text):
    """name -> value from `postconf -d` output (folded lines joined back)."""
    params = {}
    last = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and last:
            params[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(" =")
        assert sep, f"not a parameter line: {line!r}"
        params[name] = value[1:] if value.startswith(" ") else value
        last = name
    return params


def postconf_d(program, confdir):
    result = run([program, "-c", str(confdir), "-d"])
    assert result.returncode == 0, result.stderr
    return parse_postconf(result.stdout)


def test_difference_list_is_readable_and_names_real_parameters(confdir):
    listed = listed_differences()
    assert {"config_directory", "syslog_name", "queue_directory"} <= listed
    ours = postconf_d(postern("postconf"), confdir)
    unknown = sorted(listed - set(ours))
    assert not unknown, f"DIFFERENCES.md lists parameters the registry lacks: {unknown}"


def test_registry_is_large_and_invents_no_names(confdir):
    ours = postconf_d(postern("postconf"), confdir)
    theirs = postconf_d(postfix("postconf"), confdir)
    assert len(ours) >= 400
    invented = sorted(set(ours) - set(theirs) - POSTERN_ONLY)
    assert not invented, f"names Postfix 3.7 does not know: {invented}"
    # and every listed Postern-only name is one Postern has and Postfix does not
    assert POSTERN_ONLY <= set(ours) - set(theirs), sorted(POSTERN_ONLY - (set(ours) - set(theirs)))


def test_every_default_matches_debian_postfix(confdir):
    ours = postconf_d(postern("postconf"), confdir)
    theirs = postconf_d(postfix("postconf"), confdir)
    skip = listed_differences() | DERIVED | POSTERN_ONLY
    mismatches = [
        f"{name}: postern {ours[name]!r} != postfix {theirs[name]!r}"
        for name in sorted(ours)
        if name not in skip and name in theirs and ours[name] != theirs[name]
    ]
    assert not mismatches, "defaults differ:\n" + "\n".join(mismatches)


def test_listed_differences_really_differ(confdir):
    """A listed difference that no longer differs is a stale entry."""
    ours = postconf_d(postern("postconf"), confdir)
    theirs = postconf_d(postfix("postconf"), confdir)
    stale = sorted(name for name in listed_differences()
                   if name in ours and name in theirs and ours[name] == theirs[name])
    assert not stale, f"listed in DIFFERENCES.md but equal to Postfix: {stale}"


def test_registry_covers_postfix_parameters_of_postern_subsystems(confdir):
    """Postfix's parameters that Postern leaves out are only whole skipped subsystems."""
    ours = postconf_d(postern("postconf"), confdir)
    theirs = postconf_d(postfix("postconf"), confdir)
    skipped_prefixes = ("postscreen_", "dnsblog_", "tlsproxy_", "postmulti_",
                        "multi_instance_", "qmqpd_")
    missing = sorted(
        name for name in set(theirs) - set(ours)
        if not name.startswith(skipped_prefixes) and not name.endswith(PER_SERVICE_SUFFIXES)
    )
    assert not missing, f"Postfix parameters missing from the registry: {missing}"
