#include "util/ipc/attr.h"

#include "util/base/strings.h"

namespace postern::ipc {
namespace {

bool valid_name(std::string_view name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

bool needs_escape(unsigned char c) { return c < 0x20 || c == '%' || c == 0x7f; }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool unescape(std::string_view in, std::string& out) {
    out.clear();
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size()) return false;
        int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

}  // namespace

AttrRecord& AttrRecord::add(std::string_view name, std::string_view value) {
    attrs_.push_back({std::string(name), std::string(value)});
    return *this;
}

AttrRecord& AttrRecord::add_long(std::string_view name, long value) {
    return add(name, std::to_string(value));
}

std::optional<std::string_view> AttrRecord::find(std::string_view name) const {
    for (const Attr& a : attrs_)
        if (a.name == name) return a.value;
    return std::nullopt;
}

void encode_record(const AttrRecord& record, std::string& out) {
    static const char kHex[] = "0123456789ABCDEF";
    for (const Attr& a : record.attrs()) {
        out += a.name;
        out += '=';
        for (char ch : a.value) {
            unsigned char c = static_cast<unsigned char>(ch);
            if (needs_escape(c)) {
                out += '%';
                out += kHex[c >> 4];
                out += kHex[c & 15];
            } else {
                out += ch;
            }
        }
        out += '\n';
    }
    out += '\n';
}

std::string encode_record(const AttrRecord& record) {
    std::string out;
    encode_record(record, out);
    return out;
}

Status AttrDecoder::fail(std::string message) {
    failed_ = true;
    error_ = std::move(message);
    return make_error(error_);
}

Status AttrDecoder::feed(std::string_view data) {
    if (failed_) return make_error(error_);
    while (!data.empty()) {
        size_t nl = data.find('\n');
        std::string_view chunk = data.substr(0, nl);
        record_bytes_ += chunk.size() + (nl == std::string_view::npos ? 0 : 1);
        if (record_bytes_ > limits_.max_record)
            return fail(strprintf("attribute record longer than %zu bytes", limits_.max_record));
        if (line_.size() + chunk.size() > limits_.max_name + 1 + 3 * limits_.max_value)
            return fail("attribute line too long");
        line_.append(chunk);
        if (nl == std::string_view::npos) break;
        data.remove_prefix(nl + 1);
        std::string line = std::move(line_);
        line_.clear();
        if (Status st = take_line(line); !st) return st;
    }
    return Status::success();
}

Status AttrDecoder::take_line(std::string_view line) {
    if (line.empty()) {  // end of record
        ready_.push_back(std::move(current_));
        current_ = AttrRecord();
        record_bytes_ = 0;
        return Status::success();
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return fail("attribute without '='");
    std::string_view name = line.substr(0, eq);
    if (name.size() > limits_.max_name || !valid_name(name))
        return fail("bad attribute name");
    if (current_.attrs_.size() >= limits_.max_attrs)
        return fail(strprintf("more than %zu attributes in one record", limits_.max_attrs));
    Attr attr{std::string(name), {}};
    if (!unescape(line.substr(eq + 1), attr.value))
        return fail(strprintf("bad %%-escape in attribute %s", attr.name.c_str()));
    if (attr.value.size() > limits_.max_value)
        return fail(strprintf("attribute %s longer than %zu bytes", attr.name.c_str(), limits_.max_value));
    current_.attrs_.push_back(std::move(attr));
    return Status::success();
}

std::optional<AttrRecord> AttrDecoder::next() {
    if (ready_pos_ >= ready_.size()) {
        ready_.clear();
        ready_pos_ = 0;
        return std::nullopt;
    }
    return std::move(ready_[ready_pos_++]);
}

RecordReader::RecordReader(const AttrRecord& record)
    : record_(record), used_(record.attrs().size(), false) {}

std::optional<std::string> RecordReader::take_optional(std::string_view name) {
    std::optional<std::string> found;
    const auto& attrs = record_.attrs();
    for (size_t i = 0; i < attrs.size(); ++i) {
        if (attrs[i].name != name) continue;
        if (found && error_.empty()) error_ = strprintf("attribute %.*s repeated", static_cast<int>(name.size()), name.data());
        used_[i] = true;
        found = attrs[i].value;
    }
    return found;
}

std::string RecordReader::take(std::string_view name) {
    auto v = take_optional(name);
    if (!v && error_.empty())
        error_ = strprintf("missing attribute %.*s", static_cast<int>(name.size()), name.data());
    return v.value_or("");
}

long RecordReader::take_long(std::string_view name) {
    std::string v = take(name);
    long out = 0;
    if (!v.empty() && !parse_long(v, out) && error_.empty())
        error_ = strprintf("attribute %.*s: bad number \"%s\"", static_cast<int>(name.size()), name.data(), v.c_str());
    return out;
}

std::optional<long> RecordReader::take_long_optional(std::string_view name) {
    std::optional<std::string> v = take_optional(name);
    if (!v) return std::nullopt;
    long out = 0;
    if (!parse_long(*v, out)) {
        if (error_.empty())
            error_ = strprintf("attribute %.*s: bad number \"%s\"", static_cast<int>(name.size()), name.data(), v->c_str());
        return std::nullopt;
    }
    return out;
}

std::vector<std::string> RecordReader::take_all(std::string_view name) {
    std::vector<std::string> out;
    const auto& attrs = record_.attrs();
    for (size_t i = 0; i < attrs.size(); ++i)
        if (attrs[i].name == name) {
            used_[i] = true;
            out.push_back(attrs[i].value);
        }
    return out;
}

Status RecordReader::finish() const {
    if (!error_.empty()) return make_error(error_);
    const auto& attrs = record_.attrs();
    for (size_t i = 0; i < attrs.size(); ++i)
        if (!used_[i]) return make_error("unexpected attribute " + attrs[i].name);
    return Status::success();
}

}  // namespace postern::ipc
