// The verbs that talk to master: start, start-fg, stop, abort, reload, status, flush.
// Messages and their order are postfix-script's, with Postern's name.
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "postern/postern.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::ctl {
namespace {

pid_t require_running(const Instance& inst) {
    pid_t pid = running_master(inst);
    if (pid == 0) log::fatal("the Postern mail system is not running");
    return pid;
}

void sleep_ms(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

// Polls the pid file lock until master is gone; false after `ms` milliseconds.
bool wait_gone(const Instance& inst, long ms) {
    for (long waited = 0; waited < ms; waited += 50) {
        if (running_master(inst) == 0) return true;
        sleep_ms(50);
    }
    return running_master(inst) == 0;
}

int start(Instance& inst, bool foreground) {
    if (running_master(inst) != 0) log::fatal("the Postern mail system is already running");
    if (!report_findings(check_instance(inst, true))) log::fatal("Postern integrity check failed!");
    log::info("starting the Postern mail system");
    if (foreground) return run_master(inst, {"-d"}, true);
    // -w: master detaches, and its parent exits once every endpoint is open, so clients
    // can connect as soon as this returns.
    if (run_master(inst, {"-w"}, false) != 0) log::fatal("mail system startup failed");
    return 0;
}

}  // namespace

int cmd_start(Instance& inst) { return start(inst, false); }

int cmd_start_fg(Instance& inst) { return start(inst, true); }

int cmd_stop(Instance& inst) {
    pid_t pid = require_running(inst);
    log::info("stopping the Postern mail system");
    if (kill(pid, SIGTERM) < 0 && errno != ESRCH) log::fatal("kill %ld: %s", static_cast<long>(pid), std::strerror(errno));
    // master stops its children (giving them up to 5 seconds) before it exits.
    for (int i = 0; i < 7; ++i) {
        if (wait_gone(inst, 1000)) return 0;
        log::info("waiting for the Postern mail system to terminate");
    }
    log::warn("stopping the Postern mail system with force");
    // A detached master leads its own process group: the group goes with it.
    if (kill(-pid, SIGKILL) < 0) kill(pid, SIGKILL);
    if (!wait_gone(inst, 2000)) log::fatal("the Postern mail system did not terminate (PID %ld)", static_cast<long>(pid));
    return 0;
}

int cmd_abort(Instance& inst) {
    pid_t pid = require_running(inst);
    log::info("aborting the Postern mail system");
    kill(pid, SIGTERM);
    return 0;
}

int cmd_reload(Instance& inst) {
    pid_t pid = require_running(inst);
    log::info("refreshing the Postern mail system");
    if (kill(pid, SIGHUP) < 0) log::fatal("kill -HUP %ld: %s", static_cast<long>(pid), std::strerror(errno));
    return 0;
}

int cmd_status(Instance& inst) {
    pid_t pid = running_master(inst);
    if (pid == 0) {
        log::info("the Postern mail system is not running");
        return 1;
    }
    log::info("the Postern mail system is running: PID: %ld", static_cast<long>(pid));
    return 0;
}

// Postfix runs "postqueue -f", which sends mail_flush_deferred()'s trigger: forget dead
// destinations, ignore the deferred files' time stamps, scan deferred, scan incoming.
int cmd_flush(Instance& inst) {
    namespace mail = ipc::mail;
    if (running_master(inst) == 0) log::fatal("Cannot flush mail queue - mail system is down");
    const char bytes[] = {mail::kTriggerFlushDead, mail::kTriggerScanAll,
                          mail::kTriggerScanDeferred, mail::kTriggerScanIncoming};
    Status s = mail::send_trigger(inst.queue_directory, mail::kQmgrSocket,
                                  std::string_view(bytes, sizeof bytes));
    if (!s) log::fatal("Cannot flush mail queue: %s (is the qmgr service in master.cf?)", s.error().c_str());
    return 0;
}

}  // namespace postern::ctl
