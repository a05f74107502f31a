// Reading queue files: the envelope alone (qmgr's fast path), then the content lines,
// then the extracted records. Every malformed or short input is an error, never a crash.
#include <stdlib.h>

#include <cstring>

#include "util/base/strings.h"
#include "util/queue/queue_file.h"

namespace postern::queue {
namespace {

constexpr std::string_view kExtractedTypes = "EDROPreAFIL>fVW<ion@";

bool parse_longs(std::string_view text, long* out, int max_fields, int& got) {
    got = 0;
    for (auto tok : split_tokens(text, " ")) {
        if (got == max_fields || !parse_long(tok, out[got])) return false;
        ++got;
    }
    return true;
}

Result<SizeInfo> parse_size(std::string_view text) {
    long v[6] = {0, 0, 0, 0, 0, 0};
    int got = 0;
    if (!parse_longs(text, v, 6, got) || got < 4 || v[0] < 0 || v[1] < 0 || v[2] < 0)
        return make_error("invalid size record: " + std::string(text.substr(0, 100)));
    return SizeInfo{v[0], v[1], v[2], v[3], v[4], v[5]};
}

}  // namespace

QueueFileReader::QueueFileReader(std::unique_ptr<ByteSource> source) : reader_(std::move(source)) {}

Error QueueFileReader::corrupt(std::string message) {
    state_ = FileState::Corrupt;
    return make_error(std::move(message));
}

Result<std::optional<Record>> QueueFileReader::next_record() {
    auto r = reader_.next();
    if (!r) {
        switch (reader_.error_kind()) {
            case ReadError::Truncated: state_ = FileState::Incomplete; break;
            case ReadError::Io: state_ = FileState::Io; break;
            default: state_ = FileState::Corrupt; break;
        }
    }
    return r;
}

Status QueueFileReader::envelope_record(const Record& r, Envelope& env, Recipient& pending) {
    std::string data(r.data);
    switch (r.type) {
        case rec::kTime: {
            long v[2] = {0, 0};
            int got = 0;
            if (!parse_longs(data, v, 2, got) || got < 1)
                return corrupt("bad arrival time record: " + data.substr(0, 100));
            env.arrival_sec = v[0];
            env.arrival_usec = v[1];
            return {};
        }
        case rec::kFullName: env.fullname = data; return {};
        case rec::kFrom: env.sender = data; return {};
        case rec::kFilter: env.content_filter = data; return {};
        case rec::kWarn: {
            long when = 0;
            if (!parse_long(trim(data), when)) return corrupt("bad warning time record: " + data);
            env.warn_time = when;
            env.warn_offset = r.offset + record_header_size(r.data.size());
            return {};
        }
        case rec::kOrigRcpt: pending.original = data; return {};
        case rec::kRcpt:
        case rec::kDone:
            pending.address = data;
            pending.done = r.type == rec::kDone;
            pending.offset = r.offset;
            env.recipients.push_back(std::move(pending));
            pending = Recipient{};
            return {};
        case rec::kAttr: break;
        default:
            if (std::strchr("I>f<ion@", r.type) && r.type) return {};  // kept, not interpreted
            return corrupt(strprintf("unexpected record type '%c' (%d) in envelope at offset %lu",
                                     r.type >= 32 && r.type < 127 ? r.type : '?', r.type,
                                     static_cast<unsigned long>(r.offset)));
    }
    size_t eq = data.find('=');
    if (eq == std::string::npos || eq == 0)
        return corrupt("malformed attribute: " + data.substr(0, 100));
    std::string name = data.substr(0, eq), value = data.substr(eq + 1);
    if (name == attr::kCreateTime) {
        if (!parse_long(value, env.create_time)) return corrupt("bad create_time: " + value);
    } else if (name == attr::kDsnOrcpt) {
        pending.dsn_orcpt = value;
    } else if (name == attr::kDsnNotify) {
        long mask = 0;
        if (!parse_long(value, mask) || mask < 0 || mask > 15)
            return corrupt("bad notify_flags: " + value);
        pending.dsn_notify = static_cast<int>(mask);
    } else {
        env.attributes.emplace_back(std::move(name), std::move(value));
    }
    return {};
}

Result<Envelope> QueueFileReader::read_envelope() {
    Envelope env;
    Recipient pending;
    bool first = true;
    // Reject a file that does not start with a size record before trusting any length.
    auto type = reader_.peek_type();
    if (type.ok() && *type && **type != rec::kSize)
        return corrupt("input is not a valid queue file (no size record)");
    for (;;) {
        auto r = next_record();
        if (!r) return make_error(r.error());
        if (!*r) {
            state_ = FileState::Incomplete;
            return make_error("end of file in envelope: the file is incomplete");
        }
        const Record& rec = **r;
        if (first && rec.type != rec::kSize)
            return corrupt("input is not a valid queue file (no size record)");
        if (first) {
            auto size = parse_size(rec.data);
            if (!size) return corrupt(size.error());
            env.size = *size;
            first = false;
            continue;
        }
        if (rec.type == rec::kMesg) {
            env.content_offset = rec.offset;
            uint64_t data_start = reader_.offset();
            if (env.size.data_offset != 0 && static_cast<uint64_t>(env.size.data_offset) != data_start)
                return corrupt(strprintf("size record data offset %ld does not match %lu",
                                         env.size.data_offset,
                                         static_cast<unsigned long>(data_start)));
            return env;
        }
        Status s = envelope_record(rec, env, pending);
        if (!s) return make_error(s.error());
    }
}

Result<std::optional<std::string>> QueueFileReader::next_line() {
    if (content_done_) return std::optional<std::string>();
    std::string line;
    bool partial = false;
    for (;;) {
        auto r = next_record();
        if (!r) return make_error(r.error());
        if (!*r) {
            state_ = FileState::Incomplete;
            return make_error("end of file in message content: the file is incomplete");
        }
        const Record& rec = **r;
        if (rec.type == rec::kNorm || rec.type == rec::kCont) {
            line.append(rec.data);
            partial = true;
            if (rec.type == rec::kNorm) return std::optional<std::string>(std::move(line));
            continue;
        }
        if (rec.type == rec::kXtra) {
            content_done_ = true;
            // Text cut short by X is still text: hand it out as the last line.
            if (partial) return std::optional<std::string>(std::move(line));
            return std::optional<std::string>();
        }
        return corrupt(strprintf("unexpected record type %d in message content at offset %lu",
                                 rec.type, static_cast<unsigned long>(rec.offset)));
    }
}

Result<Extracted> QueueFileReader::read_extracted() {
    while (!content_done_) {
        auto line = next_line();
        if (!line) return make_error(line.error());
    }
    Extracted out;
    for (;;) {
        auto r = next_record();
        if (!r) return make_error(r.error());
        if (!*r) {
            state_ = FileState::Incomplete;
            return make_error("end of file before end record: the file is incomplete");
        }
        const Record& rec = **r;
        if (rec.type == rec::kEnd) break;
        if (rec.type == 0 || !std::strchr(kExtractedTypes.data(), rec.type))
            return corrupt(strprintf("unexpected record type %d in extracted segment at offset %lu",
                                     rec.type, static_cast<unsigned long>(rec.offset)));
        out.records.emplace_back(rec.type, std::string(rec.data));
    }
    auto after = next_record();
    if (!after) return make_error(after.error());
    if (*after) return corrupt("data after the end record");
    return out;
}

Result<ParsedFile> parse_queue_file(std::string_view bytes, FileState* state) {
    QueueFileReader reader(memory_source(bytes));
    ParsedFile out;
    auto fail = [&](const std::string& message) -> Result<ParsedFile> {
        if (state) *state = reader.state();
        return make_error(message);
    };
    auto env = reader.read_envelope();
    if (!env) return fail(env.error());
    out.envelope = std::move(*env);
    for (;;) {
        auto line = reader.next_line();
        if (!line) return fail(line.error());
        if (!*line) break;
        out.lines.push_back(std::move(**line));
    }
    auto extracted = reader.read_extracted();
    if (!extracted) return fail(extracted.error());
    out.extracted = std::move(*extracted);
    if (state) *state = FileState::Ok;
    return out;
}

}  // namespace postern::queue
