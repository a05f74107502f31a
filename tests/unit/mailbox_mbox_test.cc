#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "mailbox_test_util.h"
#include "util/base/file_io.h"
#include "util/mailbox/mail_copy.h"
#include "util/mailbox/mbox.h"

using namespace postern;
using namespace postern::mailbox;
using mailbox_test::from_lines;

namespace {

std::string temp_dir() {
    std::string dir = mailbox_test::temp_dir("postern-mbox");
    REQUIRE_FALSE(dir.empty());
    return dir;
}

CopyAttr mbox_attr() {
    CopyAttr a;
    a.sender = "sender@example.com";
    a.orig_rcpt = "User@Example.com";
    a.delivered = "User@Example.COM";
    a.now = 1700000000;
    return a;
}

LockPolicy fast_lock() {
    LockPolicy p;
    p.delay_ms = 5;
    p.attempts = 400;
    return p;
}

Outcome append_to(const std::string& path, const CopyAttr& attr, std::vector<std::string> lines,
                  uint64_t limit = 0, const LockPolicy& policy = fast_lock()) {
    Failure why;
    auto box = LockedFile::open(path, 0600, policy, "5.2.0", why);
    if (!box) return why;
    return box->append(attr, from_lines(std::move(lines)), limit, "5.2.0");
}

}  // namespace

TEST_CASE("mbox append writes From_ line, envelope headers, >From quoting and a blank line",
          "[mailbox]") {
    std::string dir = temp_dir();
    std::string path = dir + "/user";
    REQUIRE_FALSE(append_to(path, mbox_attr(), {"Subject: hi", "", "From here", ">From there", "end"}));
    auto text = read_file(path);
    REQUIRE(text.ok());
    std::string first = text->substr(0, text->find('\n'));
    CHECK(first.rfind("From sender@example.com  ", 0) == 0);
    CHECK(first.size() == std::string("From sender@example.com  ").size() + 24);
    CHECK(text->substr(first.size() + 1) ==
          "Return-Path: <sender@example.com>\n"
          "X-Original-To: User@Example.com\n"
          "Delivered-To: user@example.com\n"
          "Subject: hi\n\n>From here\n>From there\nend\n\n");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(::access((path + ".lock").c_str(), F_OK) != 0);  // the dotlock is gone
}

TEST_CASE("mbox null sender is MAILER-DAEMON and odd local parts are quoted", "[mailbox]") {
    CopyAttr a = mbox_attr();
    a.sender = "";
    CHECK(copy_prefix(a).rfind("From MAILER-DAEMON  ", 0) == 0);
    CHECK(copy_prefix(a).find("Return-Path: <>\n") != std::string::npos);
    CHECK(quote_address("john doe@example.com") == "\"john doe\"@example.com");
    CHECK(quote_address("plain.user@example.com") == "plain.user@example.com");
    CHECK(quote_address("a..b@x") == "\"a..b\"@x");
}

TEST_CASE("mbox append over the size limit fails with 5.2.2 and truncates back", "[mailbox]") {
    std::string dir = temp_dir();
    std::string path = dir + "/user";
    REQUIRE_FALSE(append_to(path, mbox_attr(), {"Subject: small", "", "ok"}));
    auto before = read_file(path);
    std::vector<std::string> big(200, std::string(100, 'x'));
    Outcome r = append_to(path, mbox_attr(), big, 4000);
    REQUIRE(r);
    CHECK(r->dsn == "5.2.2");
    CHECK(r->reason == "error writing message: File too large");
    CHECK(read_file(path).value() == before.value());
}

TEST_CASE("mbox refuses symlinks and hard-linked files", "[mailbox]") {
    std::string dir = temp_dir();
    std::string target = dir + "/target";
    REQUIRE_FALSE(append_to(target, mbox_attr(), {"x"}));
    REQUIRE(::symlink(target.c_str(), (dir + "/sym").c_str()) == 0);
    Failure why;
    CHECK_FALSE(LockedFile::open(dir + "/sym", 0600, fast_lock(), "5.2.0", why));
    CHECK(why.reason.rfind("cannot open file: ", 0) == 0);
    REQUIRE(::link(target.c_str(), (dir + "/hard").c_str()) == 0);
    CHECK_FALSE(LockedFile::open(dir + "/hard", 0600, fast_lock(), "5.2.0", why));
    CHECK(why.reason == "cannot open file: file has 2 hard links");
}

TEST_CASE("a held dotlock makes delivery wait, a stale one is removed", "[mailbox]") {
    std::string dir = temp_dir();
    std::string path = dir + "/user";
    LockPolicy p = fast_lock();
    p.attempts = 3;
    int err = 0;
    REQUIRE(dotlock_acquire(path, p, err).ok());
    Failure why;
    CHECK_FALSE(LockedFile::open(path, 0600, p, "5.2.0", why));
    CHECK(why.dsn == "4.2.0");
    CHECK(why.reason == "unable to create lock file " + path + ".lock: File exists");
    // An old lock belongs to a crashed delivery.
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    REQUIRE(::utimensat(AT_FDCWD, (path + ".lock").c_str(), old, 0) == 0);
    CHECK(LockedFile::open(path, 0600, p, "5.2.0", why));
    dotlock_release(path);
}

TEST_CASE("two processes appending to one mbox never interleave", "[mailbox]") {
    std::string dir = temp_dir();
    std::string path = dir + "/user";
    constexpr int kMessages = 30;
    std::vector<pid_t> kids;
    for (char tag : {'a', 'b'}) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            for (int i = 0; i < kMessages; ++i) {
                std::vector<std::string> lines(50, std::string(200, tag));
                if (append_to(path, mbox_attr(), lines)) _exit(1);
            }
            _exit(0);
        }
        kids.push_back(pid);
    }
    for (pid_t pid : kids) {
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    auto text = read_file(path);
    REQUIRE(text.ok());
    // Every message body is 50 lines of one tag: a mix would show a foreign line.
    size_t messages = 0, pos = 0;
    while ((pos = text->find("Delivered-To: user@example.com\n", pos)) != std::string::npos) {
        pos += 31;
        char tag = (*text)[pos];
        for (int l = 0; l < 50; ++l) {
            REQUIRE(text->compare(pos, 200, std::string(200, tag)) == 0);
            pos += 201;
        }
        ++messages;
    }
    CHECK(messages == 2 * kMessages);
}

TEST_CASE("mailbox_delivery_lock names", "[mailbox]") {
    CHECK(parse_lock_methods({"fcntl", "dotlock"}).value() == (kLockFcntl | kLockDotlock));
    CHECK(parse_lock_methods({"flock"}).value() == kLockFlock);
    auto bad = parse_lock_methods({"fcntl", "bogus"});
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error() == "unknown mailbox_delivery_lock value \"bogus\" in \"fcntl bogus\"");
    CHECK(mbox_dsn(ENOSPC, "5.2.0") == "4.3.5");
    CHECK(mbox_dsn(EDQUOT, "5.2.0") == "5.2.2");
    CHECK(mbox_dsn(EACCES, "5.2.0") == "5.2.0");
}
