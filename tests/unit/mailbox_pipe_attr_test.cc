#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "mailbox_test_util.h"
#include "util/mailbox/mail_copy.h"
#include "util/mailbox/pipe_attr.h"
#include "util/mailbox/pipe_command.h"

using namespace postern;
using namespace postern::mailbox;
using Args = std::vector<std::string>;

TEST_CASE("pipe attributes parse flags, user, size, eol and the argv tail", "[pipe]") {
    auto a = parse_pipe_attr({"flags=DRhuX.>", "user=vmail:mail", "size=1000", "eol=\\r\\n",
                              "null_sender=", "directory=/tmp", "argv=/bin/cat", "-x", "${sender}"});
    REQUIRE(a);
    CHECK(a->user == "vmail");
    CHECK(a->group == "mail");
    CHECK(a->flags == (kCopyDelivered | kCopyReturnPath | kPipeFoldHost | kPipeFoldUser | kPipeFinal |
                       kCopyDot | kCopyQuote));
    CHECK(a->size_limit == 1000);
    CHECK(a->eol == "\r\n");
    CHECK(a->null_sender.empty());
    CHECK(a->exec_dir == "/tmp");
    CHECK(a->command == Args{"/bin/cat", "-x", "${sender}"});
}

TEST_CASE("pipe attributes refuse what Postfix's pipe refuses", "[pipe]") {
    CHECK(parse_pipe_attr({"flags=Z", "user=a", "argv=/bin/true"}).error() == "unknown flag: Z (ignored)");
    CHECK(parse_pipe_attr({"argv=/bin/true"}).error() == "missing user= command-line attribute");
    CHECK(parse_pipe_attr({"user=a"}).error() == "missing argv= command-line attribute");
    CHECK(parse_pipe_attr({"user=a", "colour=red", "argv=x"}).error() == "unknown attribute name: colour=red");
    CHECK(parse_pipe_attr({"user=a", "size=big", "argv=x"}).error() == "get_service_attr: bad size= value: big");
}

TEST_CASE("eol= understands C escapes", "[pipe]") {
    CHECK(unescape("\\r\\n") == "\r\n");
    CHECK(unescape("\\101\\\\x") == "A\\x");
    CHECK(unescape("plain") == "plain");
}

TEST_CASE("a per-recipient macro expands to one argument per recipient", "[pipe]") {
    PipeMacros m{{"sender", "s@example.com"}, {"nexthop", "Example.COM"}, {"queue_id", "ABC"}};
    std::vector<PipeRecipient> r{{"Joe+Ext@Example.COM", "orig@x"}, {"ann@example.com", "ann@example.com"}};
    auto argv = expand_pipe_argv({"/bin/deliver", "-f", "${sender}", "$nexthop", "$(queue_id)", "--",
                                  "${recipient}", "u=${user} e=${extension} m=$mailbox d=${domain}",
                                  "o=${original_recipient}", "$$x", "${extension?+}${extension:none}"},
                                 m, r, 0, "+");
    REQUIRE(argv);
    CHECK(*argv == Args{"/bin/deliver", "-f", "s@example.com", "Example.COM", "ABC", "--",
                        "Joe+Ext@Example.COM", "ann@example.com",
                        "u=Joe e=Ext m=Joe+Ext d=Example.COM", "u=ann e= m=ann d=example.com",
                        "o=orig@x", "o=ann@example.com", "$x", "+Ext", "none"});
}

TEST_CASE("flags h, u and q fold and quote the recipient", "[pipe]") {
    std::vector<PipeRecipient> r{{"Joe Doe@Example.COM", "x"}};
    auto get = [&](unsigned flags, const char* arg) { return (*expand_pipe_argv({arg}, {}, r, flags, "+"))[0]; };
    CHECK(get(kPipeFoldHost, "${recipient}") == "Joe Doe@example.com");
    CHECK(get(kPipeFoldUser, "${recipient}") == "joe doe@Example.COM");
    CHECK(get(kPipeFoldUser | kPipeFoldHost, "${recipient}") == "joe doe@example.com");
    CHECK(get(kPipeQuoteLocal, "${recipient}") == "\"Joe Doe\"@Example.COM");
    CHECK(get(kPipeFoldHost, "${domain}") == "example.com");
}

TEST_CASE("an argument with ${user} is left out for an empty user part", "[pipe]") {
    std::vector<PipeRecipient> r{{"+bboard@example.com", "x"}};
    auto argv = expand_pipe_argv({"cmd", "-m", "${user}"}, {}, r, 0, "+");
    REQUIRE(argv);
    CHECK(*argv == Args{"cmd", "-m"});
}

TEST_CASE("an unknown macro name is an error", "[pipe]") {
    auto argv = expand_pipe_argv({"cmd", "${colour}"}, {}, {{"a@b", "a@b"}}, 0, "+");
    REQUIRE(!argv);
    CHECK(argv.error() == "unknown macro name: \"colour\"");
}

namespace {
struct StringSink : Sink {
    std::string text;
    bool write(std::string_view d) override { return text.append(d), true; }
};
}  // namespace

TEST_CASE("the dot flag and eol shape what the command reads", "[pipe]") {
    CopyAttr a;
    a.flags = kCopyDot | kCopyReturnPath;
    a.sender = "s@example.com";
    a.eol = "\r\n";
    StringSink out;
    REQUIRE(!copy_message(a, mailbox_test::from_lines({"Subject: x", "", ".dot", "plain"}), out, "5.3.0"));
    CHECK(out.text == "Return-Path: <s@example.com>\r\nSubject: x\r\n\r\n..dot\r\nplain\r\n");
}

TEST_CASE("an argv command runs without a shell and is named by its first word", "[pipe]") {
    CopyAttr a;
    a.flags = 0;
    PipeCommand cmd;
    cmd.argv = {"/bin/sh", "-c", "cat >/dev/null; echo 'out put'; exit 3", "a;b"};
    cmd.time_limit = 20;
    PipeResult r = run_pipe_command(cmd, a, mailbox_test::from_lines({"Subject: x", "", ".dot"}));
    CHECK(r.status == PipeStatus::Bounce);
    CHECK(r.reason == "Command died with status 3: \"/bin/sh\". Command output: out put ");
    cmd.argv = {"/nonexistent/deliver"};
    r = run_pipe_command(cmd, a, mailbox_test::from_lines({"x"}));
    CHECK(r.reason.find("Command died with status 1: \"/nonexistent/deliver\"") == 0);
}
