#include "util/mailbox/pipe_command.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "util/base/strings.h"
#include "util/base/unique_fd.h"

extern char** environ;

namespace postern::mailbox {

namespace {

const SysExit kSysExits[] = {
    {64, "5.3.0", "command line usage error"},  {65, "5.6.0", "data format error"},
    {66, "5.3.0", "cannot open input"},         {67, "5.1.1", "user unknown"},
    {68, "5.1.2", "host name unknown"},         {69, "5.3.0", "service unavailable"},
    {70, "5.3.0", "internal software error"},   {71, "4.3.0", "system resource problem"},
    {72, "5.3.0", "critical OS file missing"},  {73, "5.2.0", "can't create user output file"},
    {74, "5.3.0", "input/output error"},        {75, "4.3.0", "temporary failure"},
    {76, "5.5.0", "remote error in protocol"},  {77, "5.7.0", "permission denied"},
    {78, "5.3.5", "local configuration error"},
};

constexpr size_t kOutputLimit = 4096;  // Postfix keeps one VSTREAM buffer of output
constexpr const char* kShellMeta = "\"'`\\$;&|<>(){}[]*?~#\n\r";
constexpr int kExTempfail = 75, kExOserr = 71;

using Clock = std::chrono::steady_clock;

[[noreturn]] void child_fail(int status, const std::string& text) {
    std::string line = text + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
    _exit(status);
}

void exec_words(std::vector<std::string>& words) {
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
}

[[noreturn]] void run_child(const PipeCommand& cmd, int in_fd, int out_fd) {
    ::setsid();
    if (!cmd.chroot.empty() && (::chroot(cmd.chroot.c_str()) < 0 || ::chdir("/") < 0))
        child_fail(kExTempfail, strprintf("chroot %s: %s", cmd.chroot.c_str(), std::strerror(errno)));
    if (cmd.set_ids) {
        if (::setgroups(1, &cmd.gid) < 0 || ::setgid(cmd.gid) < 0 || ::setuid(cmd.uid) < 0)
            child_fail(kExOserr, strprintf("set_ugid %ld/%ld: %s", static_cast<long>(cmd.uid),
                                           static_cast<long>(cmd.gid), std::strerror(errno)));
    }
    if (::dup2(in_fd, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0 ||
        ::dup2(out_fd, STDERR_FILENO) < 0)
        _exit(kExOserr);
    for (int sig : {SIGPIPE, SIGCHLD, SIGTERM, SIGHUP, SIGINT, SIGALRM}) ::signal(sig, SIG_DFL);
    if (cmd.file_limit > 0) {
        struct rlimit rl {static_cast<rlim_t>(cmd.file_limit), static_cast<rlim_t>(cmd.file_limit)};
        ::setrlimit(RLIMIT_FSIZE, &rl);
    }
    std::vector<std::pair<std::string, std::string>> keep;
    for (const auto& name : cmd.exported)
        if (const char* v = ::getenv(name.c_str())) keep.emplace_back(name, v);
    ::clearenv();
    for (const auto& [k, v] : keep) ::setenv(k.c_str(), v.c_str(), 1);
    ::setenv("PATH", "/usr/bin:/bin", 1);
    for (const auto& [k, v] : cmd.env) ::setenv(k.c_str(), v.c_str(), 1);
    if (!cmd.cwd.empty() && ::chdir(cmd.cwd.c_str()) < 0)
        child_fail(kExTempfail, strprintf("chdir %s: %s", cmd.cwd.c_str(), std::strerror(errno)));
    std::vector<std::string> words;
    if (!cmd.argv.empty()) {
        words = cmd.argv;
        exec_words(words);
        child_fail(1, strprintf("pipe_command: execvp %s: %s", words[0].c_str(), std::strerror(errno)));
    }
    if (!cmd.shell.empty()) {
        for (auto w : split_tokens(cmd.shell, " \t\r\n")) words.emplace_back(w);
        words.push_back(cmd.command);
        exec_words(words);
        child_fail(1, strprintf("execvp %s: %s", words[0].c_str(), std::strerror(errno)));
    }
    if (cmd.command.find_first_of(kShellMeta) == std::string::npos) {
        for (auto w : split_tokens(cmd.command, " \t")) words.emplace_back(w);
        if (!words.empty()) {
            exec_words(words);
            // A name the PATH does not know may be a shell built-in ("exit 75").
            if (errno != ENOENT || words[0].find('/') != std::string::npos)
                child_fail(1, strprintf("execvp %s: %s", words[0].c_str(), std::strerror(errno)));
        }
    }
    ::execl("/bin/sh", "sh", "-c", cmd.command.c_str(), static_cast<char*>(nullptr));
    child_fail(1, strprintf("execl /bin/sh: %s", std::strerror(errno)));
}

// Feeds the command and drains its output at the same time, so that a command that
// talks before it reads cannot deadlock us; everything under one deadline.
class PipeSink : public Sink {
public:
    PipeSink(int in_fd, int out_fd, Clock::time_point deadline)
        : in_(in_fd), out_(out_fd), deadline_(deadline) {}

    bool write(std::string_view data) override {
        buf_.append(data);
        return buf_.size() < 65536 || flush();
    }
    bool flush() override {
        while (!buf_.empty()) {
            if (!wait(true)) return false;
            ssize_t n = ::write(in_, buf_.data(), buf_.size());
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                return false;  // EPIPE: the command stopped reading; its exit status decides
            }
            buf_.erase(0, static_cast<size_t>(n));
        }
        return true;
    }
    // After the input is closed: read the rest of the output until EOF or the deadline.
    void drain() {
        while (out_ >= 0 && wait(false)) {
        }
    }
    bool timed_out() const { return timed_out_; }
    std::string& output() { return output_; }

private:
    // Waits until stdin can take bytes (want_write) or output arrived; reads output.
    bool wait(bool want_write) {
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
            if (left.count() <= 0) {
                timed_out_ = true;
                errno = ETIMEDOUT;
                return false;
            }
            struct pollfd fds[2] = {{out_, POLLIN, 0}, {want_write ? in_ : -1, POLLOUT, 0}};
            int rc = ::poll(fds, 2, static_cast<int>(std::min<long>(left.count(), 1000)));
            if (rc < 0 && errno != EINTR) return false;
            if (rc <= 0) continue;
            if (fds[0].revents) read_output();
            if (want_write && fds[1].revents) return true;
            if (!want_write) return out_ >= 0;
        }
    }
    void read_output() {
        char buf[4096];
        ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
            out_ = -1;  // EOF: the owner closes the descriptor
            return;
        }
        size_t room = kOutputLimit - std::min(kOutputLimit, output_.size());
        output_.append(buf, std::min(room, static_cast<size_t>(n)));
    }

    int in_, out_;
    Clock::time_point deadline_;
    std::string buf_, output_;
    bool timed_out_ = false;
};

// Waits for the child until the deadline; then kills its whole process group.
int reap(pid_t pid, Clock::time_point deadline, bool& timed_out) {
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) return status;
        if (timed_out || Clock::now() >= deadline) {
            timed_out = true;
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return status;
        }
        ::usleep(2000);
    }
}

std::string printable_output(std::string text) {
    for (char& c : text) {
        if (c == '\t' || c == '\n') c = ' ';
        else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
    }
    return text;  // a trailing newline stays as a space, as in Postfix's reasons
}

// "4.x.y text" at the start of the output takes precedence over the exit status.
bool output_dsn(const std::string& out, std::string& dsn, std::string& text) {
    size_t i = 0;
    if (out.empty() || (out[0] != '2' && out[0] != '4' && out[0] != '5') || out.size() < 5) return false;
    i = 1;
    for (int part = 0; part < 2; ++part) {
        if (i >= out.size() || out[i] != '.') return false;
        size_t start = ++i;
        while (i < out.size() && std::isdigit(static_cast<unsigned char>(out[i]))) ++i;
        if (i == start || i - start > 3) return false;
    }
    if (i < out.size() && out[i] != ' ') return false;
    dsn = out.substr(0, i);
    text = std::string(trim_left(std::string_view(out).substr(i)));
    if (dsn[0] == '2') dsn[0] = '5';  // a failing command cannot report success
    return true;
}

PipeResult classify(const PipeCommand& cmd, int status, bool timed_out, const std::string& out) {
    PipeResult r;
    r.output = out;
    std::string tail = out.empty() ? "" : ". Command output: " + out;
    const char* c = cmd.argv.empty() ? cmd.command.c_str() : cmd.argv[0].c_str();
    if (timed_out) {
        r.status = PipeStatus::Bounce, r.dsn = "5.3.0";
        r.reason = strprintf("Command time limit exceeded: \"%s\"%s", c, tail.c_str());
    } else if (WIFSIGNALED(status)) {
        r.status = PipeStatus::Defer, r.dsn = "4.3.0";
        r.reason = strprintf("Command died with signal %d: \"%s\"%s", WTERMSIG(status), c, tail.c_str());
    } else if (WEXITSTATUS(status) == 0) {
        r.status = PipeStatus::Ok, r.dsn = "2.0.0";
    } else if (std::string dsn, text; output_dsn(out, dsn, text)) {
        r.status = dsn[0] == '4' ? PipeStatus::Defer : PipeStatus::Bounce;
        r.dsn = dsn, r.reason = text;
    } else if (const SysExit* se = sys_exit_detail(WEXITSTATUS(status))) {
        r.status = se->dsn[0] == '4' ? PipeStatus::Defer : PipeStatus::Bounce;
        r.dsn = se->dsn, r.reason = se->text + tail;
    } else {
        r.status = PipeStatus::Bounce, r.dsn = "5.3.0";
        r.reason = strprintf("Command died with status %d: \"%s\"%s", WEXITSTATUS(status), c, tail.c_str());
    }
    return r;
}

}  // namespace

const SysExit* sys_exit_detail(int code) {
    for (const auto& se : kSysExits)
        if (se.code == code) return &se;
    return nullptr;
}

PipeResult run_pipe_command(const PipeCommand& cmd, const CopyAttr& attr, const LineReader& next) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) < 0) return {PipeStatus::Defer, "4.3.0", strprintf("Delivery failed: %s", std::strerror(errno)), ""};
    UniqueFd in_r(in[0]), in_w(in[1]);
    if (::pipe2(out, O_CLOEXEC) < 0) return {PipeStatus::Defer, "4.3.0", strprintf("Delivery failed: %s", std::strerror(errno)), ""};
    UniqueFd out_r(out[0]), out_w(out[1]);
    // A command that stops reading must show up as EPIPE, not kill the delivery agent.
    static const bool sigpipe_ignored = (::signal(SIGPIPE, SIG_IGN), true);
    (void)sigpipe_ignored;
    pid_t pid = ::fork();
    if (pid < 0) return {PipeStatus::Defer, "4.3.0", strprintf("Delivery failed: %s", std::strerror(errno)), ""};
    if (pid == 0) run_child(cmd, in_r.get(), out_w.get());
    in_r.reset();
    out_w.reset();
    ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
    auto deadline = Clock::now() + std::chrono::seconds(cmd.time_limit > 0 ? cmd.time_limit : 1);
    PipeSink sink(in_w.get(), out_r.get(), deadline);
    Outcome copied = copy_message(attr, next, sink, "5.3.0");
    int write_errno = copied ? errno : 0;
    in_w.reset();
    if (!sink.timed_out()) sink.drain();
    bool timed_out = sink.timed_out();
    int status = reap(pid, deadline, timed_out);
    std::string output = printable_output(sink.output());
    PipeResult r = classify(cmd, status, timed_out, output);
    if (r.status == PipeStatus::Ok && copied) {
        if (copied->corrupt) return {PipeStatus::Corrupt, "4.3.0", copied->reason, output};
        if (write_errno != EPIPE)
            return {PipeStatus::Defer, "4.3.0",
                    strprintf("Command failed: %s: \"%s\"", std::strerror(write_errno),
                              cmd.argv.empty() ? cmd.command.c_str() : cmd.argv[0].c_str()),
                    output};
    }
    return r;
}

}  // namespace postern::mailbox
