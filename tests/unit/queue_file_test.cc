#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_test_util.h"
#include "util/base/file_io.h"
#include "util/queue/queue_file.h"

using namespace postern::queue;

namespace {

Envelope sample_envelope() {
    Envelope env;
    env.fullname = "Jos\xc3\xa9 Example";
    env.sender = "sender@example.com";
    env.attributes = {{"rewrite_context", "local"},
                      {"envelope_id", "ENV-123"},
                      {"ret_flags", "2"},
                      {"encoding", "8bit"},
                      {"log_ident", "sample"},
                      {"log_client_name", "client.example"},
                      {"log_client_address", "192.0.2.1"}};
    env.warn_time = 1700000000;
    Recipient a;
    a.address = "alice@example.com";
    a.original = "alice";
    a.dsn_orcpt = "rfc822;alice@example.com";
    a.dsn_notify = 5;
    Recipient b;
    b.address = "bob@example.com";
    Recipient c;
    c.address = "carol@example.com";
    c.done = true;
    env.recipients = {a, b, c};
    return env;
}

std::vector<std::string> sample_lines() {
    return {"From: Jos\xc3\xa9 <sender@example.com>",
            "Subject: sample",
            "X-Folded: first",
            "\tsecond",
            "",
            "body with 8-bit \xff\xfe bytes",
            std::string("NUL\0inside", 10),
            std::string(1024 * 1024, 'x'),
            "",
            "last line"};
}

std::string write_sample(const Layout& layout, std::string* id = nullptr) {
    auto w = QueueFileWriter::create(layout);
    REQUIRE(w.ok());
    w->write_envelope(sample_envelope());
    for (const auto& line : sample_lines()) w->add_line(line);
    w->add_extracted(rec::kAttr, "log_message_origin=test");
    w->add_extracted(rec::kErto, "errors@example.com");
    REQUIRE(w->commit().ok());
    if (id) *id = w->id();
    return w->path();
}

std::string slurp(const std::string& path) {
    auto data = postern::read_file(path);
    REQUIRE(data.ok());
    return *data;
}

}  // namespace

TEST_CASE("queue file round trip keeps every record kind, 8-bit bytes, NULs and 1 MB lines") {
    test::ScratchQueue q;
    std::string path = write_sample(q.layout);
    auto parsed = parse_queue_file(slurp(path));
    REQUIRE(parsed.ok());
    const Envelope& env = parsed->envelope;
    CHECK(env.sender == "sender@example.com");
    CHECK(env.fullname.value() == "Jos\xc3\xa9 Example");
    CHECK(env.arrival_sec > 1600000000);
    CHECK(env.create_time == env.arrival_sec);
    CHECK(env.warn_time.value() == 1700000000);
    CHECK(*env.attribute("envelope_id") == "ENV-123");
    CHECK(*env.attribute("log_client_address") == "192.0.2.1");
    REQUIRE(env.recipients.size() == 3);
    CHECK(env.recipients[0].address == "alice@example.com");
    CHECK(env.recipients[0].original == "alice");
    CHECK(env.recipients[0].dsn_orcpt == "rfc822;alice@example.com");
    CHECK(env.recipients[0].dsn_notify == 5);
    CHECK_FALSE(env.recipients[1].done);
    CHECK(env.recipients[2].done);
    CHECK(env.size.rcpt_count == 3);
    CHECK(parsed->lines == sample_lines());
    long text_bytes = 0;
    for (const auto& l : sample_lines()) text_bytes += static_cast<long>(l.size() + 1);
    CHECK(env.size.content_length == text_bytes);
    REQUIRE(parsed->extracted.records.size() == 2);
    CHECK(parsed->extracted.records[1] == std::make_pair(rec::kErto, std::string("errors@example.com")));
}

TEST_CASE("long lines are split into continuation records of the record limit") {
    test::ScratchQueue q;
    auto w = QueueFileWriter::create(q.layout);
    REQUIRE(w.ok());
    w->set_record_limit(10);
    w->write_envelope(Envelope{});
    w->add_line("0123456789abcdefghijXYZ");
    REQUIRE(w->commit().ok());
    std::string bytes = slurp(w->path());
    RecordReader r(memory_source(bytes));
    std::string kinds;
    while (auto rec = r.next().value()) kinds += rec->type;
    CHECK(kinds.substr(kinds.find('M')) == "MLLNXE");
    auto parsed = parse_queue_file(bytes);
    REQUIRE(parsed.ok());
    CHECK(parsed->lines == std::vector<std::string>{"0123456789abcdefghijXYZ"});
}

TEST_CASE("commit marks the file complete with the owner execute bit") {
    test::ScratchQueue q;
    auto w = QueueFileWriter::create(q.layout);
    REQUIRE(w.ok());
    struct stat st;
    REQUIRE(stat(w->path().c_str(), &st) == 0);
    CHECK_FALSE(is_complete_mode(st.st_mode));
    w->write_envelope(sample_envelope());
    w->add_line("hi");
    REQUIRE(w->commit().ok());
    REQUIRE(stat(w->path().c_str(), &st) == 0);
    CHECK(is_complete_mode(st.st_mode));
    CHECK((st.st_mode & 0777) == 0700);
}

TEST_CASE("opening a queue file tells a file mid-write from a committed one") {
    test::ScratchQueue q;
    auto w = QueueFileWriter::create(q.layout);
    REQUIRE(w.ok());
    w->write_envelope(sample_envelope());
    w->add_line("hi");
    REQUIRE(w->finish().ok());
    auto during = open_queue_file(w->path(), false);
    REQUIRE(during.ok());
    CHECK_FALSE(during->complete);
    REQUIRE(w->commit().ok());
    auto after = open_queue_file(w->path(), true);
    REQUIRE(after.ok());
    CHECK(after->complete);
    CHECK(after->size > 0);
    CHECK_FALSE(open_queue_file(q.dir + "/incoming/NOSUCH", false).ok());
    REQUIRE(symlink(w->path().c_str(), (q.dir + "/incoming/LINK").c_str()) == 0);
    CHECK_FALSE(open_queue_file(q.dir + "/incoming/LINK", false).ok());
}

TEST_CASE("a writer dropped before commit leaves no file behind") {
    test::ScratchQueue q;
    std::string path;
    {
        auto w = QueueFileWriter::create(q.layout);
        REQUIRE(w.ok());
        path = w->path();
        w->write_envelope(sample_envelope());
        CHECK(access(path.c_str(), F_OK) == 0);
    }
    CHECK(access(path.c_str(), F_OK) != 0);
}

TEST_CASE("group commit makes every file of the batch complete") {
    test::ScratchQueue q;
    std::vector<QueueFileWriter> ws;
    for (int i = 0; i < 8; ++i) {
        auto w = QueueFileWriter::create(q.layout);
        REQUIRE(w.ok());
        w->write_envelope(sample_envelope());
        w->add_line("message " + std::to_string(i));
        ws.push_back(std::move(*w));
    }
    std::vector<QueueFileWriter*> ptrs;
    for (auto& w : ws) ptrs.push_back(&w);
    REQUIRE(commit_many(ptrs).ok());
    for (auto& w : ws) {
        struct stat st;
        REQUIRE(stat(w.path().c_str(), &st) == 0);
        CHECK(is_complete_mode(st.st_mode));
        CHECK(parse_queue_file(slurp(w.path())).ok());
    }
}

TEST_CASE("done flags flip in place, one at a time or in a batch") {
    test::ScratchQueue q;
    std::string path = write_sample(q.layout);
    auto before = parse_queue_file(slurp(path));
    REQUIRE(before.ok());
    off_t size_before = static_cast<off_t>(slurp(path).size());
    postern::UniqueFd fd(open(path.c_str(), O_RDWR));
    REQUIRE(fd);
    const auto& rcpts = before->envelope.recipients;
    REQUIRE(mark_done(fd.get(), rcpts[0].offset).ok());
    auto mid = parse_queue_file(slurp(path));
    REQUIRE(mid.ok());
    CHECK(mid->envelope.recipients[0].done);
    CHECK_FALSE(mid->envelope.recipients[1].done);
    std::vector<uint64_t> rest = {rcpts[1].offset, rcpts[2].offset};
    REQUIRE(mark_done_many(fd.get(), rest).ok());
    auto after = parse_queue_file(slurp(path));
    REQUIRE(after.ok());
    for (const auto& r : after->envelope.recipients) CHECK(r.done);
    CHECK(static_cast<off_t>(slurp(path).size()) == size_before);
    REQUIRE(update_warn_time(fd.get(), after->envelope.warn_offset, 1800000000).ok());
    CHECK(parse_queue_file(slurp(path))->envelope.warn_time.value() == 1800000000);
}

TEST_CASE("a queue file cut at every byte offset is reported incomplete, never accepted") {
    test::ScratchQueue q;
    auto w = QueueFileWriter::create(q.layout);
    REQUIRE(w.ok());
    w->write_envelope(sample_envelope());
    for (const char* line : {"Subject: short", "", "body", "more body"}) w->add_line(line);
    w->add_line(std::string(300, 'y'));
    REQUIRE(w->commit().ok());
    std::string bytes = slurp(w->path());
    REQUIRE(parse_queue_file(bytes).ok());
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
        FileState state = FileState::Ok;
        auto parsed = parse_queue_file(std::string_view(bytes).substr(0, cut), &state);
        INFO("cut at " << cut);
        REQUIRE_FALSE(parsed.ok());
        CHECK(state == FileState::Incomplete);
    }
}

TEST_CASE("garbage and damaged queue files are corrupt, with a reason") {
    FileState state = FileState::Ok;
    CHECK_FALSE(parse_queue_file("hello world\n", &state).ok());
    CHECK(state == FileState::Corrupt);
    test::ScratchQueue q;
    std::string bytes = slurp(write_sample(q.layout));
    std::string bad = bytes;
    bad[bad.find("sender@example.com") - 2] = '\x01';  // type byte of the S record
    auto r = parse_queue_file(bad, &state);
    REQUIRE_FALSE(r.ok());
    CHECK(state == FileState::Corrupt);
    CHECK(r.error().find("unexpected record type") != std::string::npos);
    CHECK_FALSE(parse_queue_file(bytes + "N\x01x", &state).ok());
    CHECK(state == FileState::Corrupt);
    std::string huge_len = "C\xff\xff\xff\xff\x7f";
    CHECK_FALSE(parse_queue_file(huge_len, &state).ok());
    CHECK(state == FileState::Corrupt);
}

TEST_CASE("the envelope is read without reading the message body") {
    test::ScratchQueue q;
    std::string path = write_sample(q.layout);
    postern::UniqueFd fd(open(path.c_str(), O_RDONLY));
    REQUIRE(fd);
    QueueFileReader reader(fd_source(fd.get()));
    auto env = reader.read_envelope();
    REQUIRE(env.ok());
    CHECK(env->recipients.size() == 3);
    CHECK(static_cast<long>(env->content_offset) + 2 == env->size.data_offset);
    auto first = reader.next_line();
    REQUIRE(first.ok());
    CHECK(first->value() == sample_lines()[0]);
    auto extracted = reader.read_extracted();
    REQUIRE(extracted.ok());
    CHECK(extracted->records.size() == 2);
}

// Test-only: writes a sample queue file for the postcat end-to-end test. Hidden ([.]),
// run with `unit_tests "[.queue-sample]"` and POSTERN_QUEUE_SAMPLE_DIR=<queue dir>.
TEST_CASE("test helper: write a sample spool file for postcat", "[.queue-sample]") {
    const char* dir = getenv("POSTERN_QUEUE_SAMPLE_DIR");
    REQUIRE(dir);
    const char* hashed = getenv("POSTERN_QUEUE_SAMPLE_HASHED");
    Layout layout(dir, {hashed ? hashed : "deferred"}, 1, true);
    auto w = QueueFileWriter::create(layout);
    REQUIRE(w.ok());
    Envelope env = sample_envelope();
    env.warn_time.reset();
    w->write_envelope(env);
    std::vector<std::string> lines = {"Received: by host.example (Postern, from userid 0)",
                                      "\tid test; Mon, 23 Nov 2026 12:00:00 +0000 (UTC)",
                                      "Subject: sample \xe9", "From: sender@example.com", "",
                                      "body line one", std::string(5000, 'z'), "", "end"};
    for (const auto& l : lines) w->add_line(l);
    w->add_extracted(rec::kAttr, "log_message_origin=test");
    REQUIRE(w->commit().ok());
    std::string id = w->id();
    const char* to = getenv("POSTERN_QUEUE_SAMPLE_QUEUE");
    if (to) REQUIRE(layout.move(id, kIncoming, to).ok());
    printf("%s\n", id.c_str());
}

namespace {
// Hands out at most one byte per read, as a slow pipe or a short pread would.
class TrickleSource final : public ByteSource {
public:
    explicit TrickleSource(std::string bytes) : bytes_(std::move(bytes)) {}
    postern::Result<size_t> read_at(uint64_t offset, char* buf, size_t n) override {
        if (offset >= bytes_.size() || n == 0) return size_t{0};
        buf[0] = bytes_[offset];
        return size_t{1};
    }

private:
    std::string bytes_;
};
}  // namespace

TEST_CASE("record lengths encode in 7-bit groups at every size boundary") {
    for (size_t len : {0ul, 1ul, 127ul, 128ul, 16383ul, 16384ul, 2097151ul, 2097152ul}) {
        std::string out;
        append_record(out, rec::kNorm, std::string(len, 'a'));
        CHECK(out.size() == record_header_size(len) + len);
        RecordReader r(memory_source(out));
        auto got = r.next();
        REQUIRE(got.ok());
        REQUIRE(got->has_value());
        CHECK((*got)->data.size() == len);
        CHECK_FALSE(r.next().value().has_value());
    }
}

TEST_CASE("the reader assembles records from one-byte reads") {
    test::ScratchQueue q;
    std::string bytes = slurp(write_sample(q.layout));
    QueueFileReader reader(std::make_unique<TrickleSource>(bytes));
    auto env = reader.read_envelope();
    REQUIRE(env.ok());
    CHECK(env->recipients.size() == 3);
    std::vector<std::string> lines;
    for (;;) {
        auto line = reader.next_line();
        REQUIRE(line.ok());
        if (!*line) break;
        lines.push_back(**line);
    }
    CHECK(lines == sample_lines());
    CHECK(reader.read_extracted().ok());
}
