#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "mailbox_test_util.h"
#include "util/base/file_io.h"
#include "util/mailbox/pipe_command.h"

using namespace postern;
using namespace postern::mailbox;
using mailbox_test::from_lines;

namespace {

CopyAttr command_attr() {
    CopyAttr a;
    a.flags = kCopyFrom | kCopyReturnPath;
    a.sender = "s@example.com";
    a.now = 1700000000;
    return a;
}

PipeResult run(const std::string& command, std::vector<std::string> lines = {"Subject: x", "", "body"},
               long limit = 20) {
    PipeCommand cmd;
    cmd.command = command;
    cmd.time_limit = limit;
    cmd.env = {{"RECIPIENT", "u@example.com"}};
    return run_pipe_command(cmd, command_attr(), from_lines(std::move(lines)));
}

std::string temp_path() {
    char tmpl[] = "/tmp/postern-pipe-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    return tmpl;
}

}  // namespace

TEST_CASE("pipe command reads the message and sees the environment", "[mailbox]") {
    std::string out = temp_path();
    PipeResult r = run("/bin/sh -c 'echo $RECIPIENT $PATH > " + out + "; cat >> " + out + "'");
    CHECK(r.status == PipeStatus::Ok);
    std::string text = read_file(out).value();
    CHECK(text.rfind("u@example.com /usr/bin:/bin\nFrom s@example.com  ", 0) == 0);
    CHECK(text.find("Return-Path: <s@example.com>\nSubject: x\n\nbody\n") != std::string::npos);
    unlink(out.c_str());
}

TEST_CASE("pipe command exit codes map through sysexits as Postfix", "[mailbox]") {
    PipeResult r = run("exit 75");
    CHECK(r.status == PipeStatus::Defer);
    CHECK(r.dsn == "4.3.0");
    CHECK(r.reason == "temporary failure");

    r = run("echo no such user >&2; exit 67");
    CHECK(r.status == PipeStatus::Bounce);
    CHECK(r.dsn == "5.1.1");
    CHECK(r.reason == "user unknown. Command output: no such user ");

    r = run("printf 'line one\\n\\tline two\\n'; exit 1");
    CHECK(r.status == PipeStatus::Bounce);
    CHECK(r.dsn == "5.3.0");
    CHECK(r.reason == "Command died with status 1: \"printf 'line one\\n\\tline two\\n'; exit 1\". "
                      "Command output: line one  line two ");

    r = run("echo 4.2.1 mailbox busy; exit 1");
    CHECK(r.status == PipeStatus::Defer);
    CHECK(r.dsn == "4.2.1");
    CHECK(r.reason == "mailbox busy ");
}

TEST_CASE("pipe command that does not read its input still succeeds", "[mailbox]") {
    std::vector<std::string> big(20000, std::string(100, 'z'));  // more than a pipe buffer
    PipeResult r = run("true", big);
    CHECK(r.status == PipeStatus::Ok);
}

TEST_CASE("pipe command that talks a lot before reading does not deadlock", "[mailbox]") {
    std::vector<std::string> big(5000, std::string(100, 'z'));
    PipeResult r = run("/bin/sh -c 'yes | head -c 200000; cat > /dev/null'", big);
    CHECK(r.status == PipeStatus::Ok);
}

TEST_CASE("pipe command over the time limit is killed with its children", "[mailbox]") {
    auto start = std::chrono::steady_clock::now();
    PipeResult r = run("/bin/sh -c 'sleep 30 & sleep 30'", {"x"}, 1);
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < std::chrono::seconds(5));
    CHECK(r.status == PipeStatus::Bounce);
    CHECK(r.dsn == "5.3.0");
    CHECK(r.reason == "Command time limit exceeded: \"/bin/sh -c 'sleep 30 & sleep 30'\"");
}

TEST_CASE("pipe command killed by a signal is deferred; a missing program bounces", "[mailbox]") {
    PipeResult r = run("kill -9 $$");
    CHECK(r.status == PipeStatus::Defer);
    CHECK(r.reason == "Command died with signal 9: \"kill -9 $$\"");
    r = run("/nonexistent/program arg");
    CHECK(r.status == PipeStatus::Bounce);
    CHECK(r.dsn == "5.3.0");
    CHECK(r.reason == "Command died with status 1: \"/nonexistent/program arg\". "
                      "Command output: execvp /nonexistent/program: No such file or directory ");
    r = run("exit 75");  // a shell built-in without shell syntax
    CHECK(r.status == PipeStatus::Defer);
}

TEST_CASE("pipe command runs under the file size limit", "[mailbox]") {
    std::string out = temp_path();
    PipeCommand cmd;
    cmd.command = "/bin/sh -c 'head -c 5000 /dev/zero > " + out + "'";
    cmd.file_limit = 1000;
    PipeResult r = run_pipe_command(cmd, command_attr(), from_lines({"x"}));
    CHECK(r.status != PipeStatus::Ok);  // SIGXFSZ or a failed write
    struct stat st {};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK(st.st_size <= 1000);
    unlink(out.c_str());
}
