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

# Sets onramp_mode (--fresh, --resume or --upgrade). Every phase is then
# called again: the helper says "done earlier" for a done one, and runs one
# a rerun sent back (a model whose file changed since it was installed).
onramp_decide_resume() {
    onramp_mode=--fresh
    onramp_rc_line=$(onramp_helper_call resume-check --owner "$$") || { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
    # shellcheck disable=SC2086 # the helper prints space-separated words
    set -- $onramp_rc_line
    case ${1:-} in
    fresh) return 0 ;;
    upgrade)
        if [ "$onramp_fresh" = 1 ]; then
            onramp_say "--fresh: installing this release over the old one from scratch (verified downloads are reused)"
        else
            onramp_mode=--upgrade
        fi
        return 0
        ;;
    complete)
        if [ "$onramp_fresh" = 1 ]; then
            onramp_say "--fresh: installing again over the complete install (verified downloads are reused)"
        else
            onramp_say "already installed in $onramp_prefix, nothing to do (checking its configuration and health)"
            onramp_mode=--resume
        fi
        return 0
        ;;
    retry)
        if [ "$onramp_fresh" = 1 ]; then
            onramp_say "--fresh: starting over (verified downloads are reused)"
        else
            onramp_say "the last install finished with problems; running again what did not install (completed through phase $2, $3)"
            onramp_mode=--resume
        fi
        return 0
        ;;
    resume) ;;
    *) onramp_die "$EX_INTERNAL" "the helper's resume-check said '$onramp_rc_line'" ;;
    esac
    if [ "$onramp_fresh" = 1 ]; then
        onramp_say "--fresh: starting over (verified downloads are reused)"
        return 0
    fi
    onramp_q="Completed through phase $2 ($3). Resume from phase $4 ($5)? [Y/n]"
    if [ "$onramp_yes" = 1 ]; then
        onramp_say "$onramp_q yes (--yes)"
        onramp_mode=--resume
    else
        onramp_ask_rc=0
        onramp_ask "onramp: $onramp_q" || onramp_ask_rc=$?
        case $onramp_ask_rc in
        0) onramp_mode=--resume ;;
        1) onramp_say "starting over (verified downloads are reused)" ;;
        *) onramp_die "$EX_NEEDS_CONFIRMATION" "a saved install (completed through phase $2, $3) can be resumed, but there is no terminal to ask; pass --yes to resume or --fresh to start over" ;;
        esac
    fi
    return 0
}
