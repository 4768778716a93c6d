# shellcheck shell=sh disable=SC2154,SC2034 # globals shared with install.sh main
# resume.sh: deciding between resume and a fresh start. The question is asked
# in this shell (never in a command substitution) on /dev/tty, never stdin;
# with no terminal and no --yes the install stops and says which flag to use.

# onramp_ask QUESTION: 0 yes (the default), 1 no, 2 no terminal.
onramp_ask() {
    (: </dev/tty) 2>/dev/null || return 2
    printf '%s ' "$1" >/dev/tty 2>/dev/null || return 2
    onramp_answer=
    IFS= read -r onramp_answer </dev/tty || return 2
    case $onramp_answer in
    '' | y | Y | yes | Yes | YES) return 0 ;;
    *) return 1 ;;
    esac
}

# onramp_ask_no QUESTION: like onramp_ask, but only an explicit yes is yes
# (for what removes things).
onramp_ask_no() {
    onramp_ask "$1" || return $?
    case $onramp_answer in
    y | Y | yes | Yes | YES) return 0 ;;
    *) return 1 ;;
    esac
}

# Sets onramp_mode (--fresh, --resume or --upgrade). The helper decides and
# says why (the same choice and words as install.ps1's); this shell only
# asks its question and passes the answer back. Every phase is then called
# again: the helper says "done earlier" for a done one, and runs one a
# rerun sent back (a model whose file changed since it was installed).
onramp_decide_resume() {
    onramp_dr_fresh=
    [ "$onramp_fresh" != 1 ] || onramp_dr_fresh=--fresh
    onramp_dr_yes=
    [ "$onramp_yes" != 1 ] || onramp_dr_yes=--yes
    onramp_rc_line=$(onramp_helper_call resume-check --owner "$$" --decide \
        ${onramp_dr_fresh:+"$onramp_dr_fresh"} ${onramp_dr_yes:+"$onramp_dr_yes"}) ||
        { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
    case $onramp_rc_line in
    'ask '*)
        onramp_ask_rc=0
        onramp_ask "onramp: ${onramp_rc_line#ask }" || onramp_ask_rc=$?
        case $onramp_ask_rc in
        0) onramp_answer=yes ;;
        1) onramp_answer=no ;;
        *) onramp_answer=none ;;
        esac
        onramp_rc_line=$(onramp_helper_call resume-check --owner "$$" --decide --answer "$onramp_answer") ||
            { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
        ;;
    esac
    case $onramp_rc_line in
    fresh | resume | upgrade) onramp_mode=--$onramp_rc_line ;;
    *) onramp_die "$EX_INTERNAL" "the helper's resume-check said '$onramp_rc_line'" ;;
    esac
}
