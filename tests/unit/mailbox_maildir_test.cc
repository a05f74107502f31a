#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "mailbox_test_util.h"
#include "util/base/file_io.h"
#include "util/mailbox/maildir.h"

using namespace postern;
using namespace postern::mailbox;
using mailbox_test::from_lines;

namespace {

std::string temp_dir() {
    std::string dir = mailbox_test::temp_dir("postern-maildir");
    REQUIRE_FALSE(dir.empty());
    return dir;
}

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') out.push_back(e->d_name);
    closedir(d);
    return out;
}

CopyAttr maildir_attr() {
    CopyAttr a;
    a.flags = kCopyToFile | kCopyReturnPath | kCopyOrigRcpt | kCopyDelivered;
    a.sender = "s@example.com";
    a.orig_rcpt = "u@example.com";
    a.delivered = "u@example.com";
    return a;
}

}  // namespace

TEST_CASE("maildir delivery creates the folders and links one file into new/", "[mailbox]") {
    std::string dir = temp_dir() + "/Maildir/";
    MaildirDelivery where{dir, 0, "mx.example:2525/x"};
    std::string name;
    REQUIRE_FALSE(deliver_maildir(where, maildir_attr(), from_lines({"Subject: a", "", "From b"}), &name));
    CHECK(entries(dir + "tmp").empty());
    CHECK(entries(dir + "cur").empty());
    auto fresh = entries(dir + "new");
    REQUIRE(fresh.size() == 1);
    CHECK(name == dir + "new/" + fresh[0]);
    // sec.VdevIinoMusec.host with the host's '/' and ':' escaped
    CHECK(fresh[0].find(".V") != std::string::npos);
    CHECK(fresh[0].find("I") != std::string::npos);
    CHECK(fresh[0].size() > std::string("mx.example\\0722525\\057x").size());
    CHECK(fresh[0].substr(fresh[0].size() - 24) == ".mx.example\\0722525\\057x");
    CHECK(read_file(name).value() ==
          "Return-Path: <s@example.com>\nX-Original-To: u@example.com\n"
          "Delivered-To: u@example.com\nSubject: a\n\nFrom b\n");
    struct stat st {};
    REQUIRE(::stat(name.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("maildir deliveries in one second get distinct names", "[mailbox]") {
    std::string dir = temp_dir() + "/md";
    MaildirDelivery where{dir, 0, "h"};
    for (int i = 0; i < 20; ++i) REQUIRE_FALSE(deliver_maildir(where, maildir_attr(), from_lines({"x"})));
    CHECK(entries(dir + "/new").size() == 20);
}

TEST_CASE("maildir file over the size limit is not delivered", "[mailbox]") {
    std::string dir = temp_dir() + "/md/";
    MaildirDelivery where{dir, 500, "h"};
    std::vector<std::string> big(20, std::string(100, 'y'));
    Outcome r = deliver_maildir(where, maildir_attr(), from_lines(big));
    REQUIRE(r);
    CHECK(r->dsn == "5.2.2");
    CHECK(r->reason == "error writing message: File too large");
    CHECK(entries(dir + "new").empty());
    CHECK(entries(dir + "tmp").empty());
}

TEST_CASE("maildir in an unwritable place fails with the create error", "[mailbox]") {
    if (geteuid() == 0) return;  // root may write anywhere
    MaildirDelivery where{"/proc/postern-maildir/", 0, "h"};
    Outcome r = deliver_maildir(where, maildir_attr(), from_lines({"x"}));
    REQUIRE(r);
    CHECK(r->reason.rfind("create /proc/postern-maildir/tmp/", 0) == 0);
}
