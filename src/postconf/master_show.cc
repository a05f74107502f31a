// postconf -M, -F and -P: master.cf entries, their fields and their -o parameters, each
// optionally filtered by service[/type[/field-or-parameter]] patterns.
#include "postconf/postconf.h"
#include "postconf/print_line.h"
#include "util/log/log.h"

namespace postern::postconf {
namespace {

struct Request {
    std::string raw;
    std::vector<std::string> pattern;
    int field = kFieldWildcard;
    int matches = 0;
};

std::vector<Request> parse_requests(const std::vector<std::string>& args, int max_parts, const char* usage) {
    std::vector<Request> reqs;
    for (const std::string& arg : args) {
        auto pattern = parse_service_pattern(arg, 1, max_parts);
        if (!pattern) log::fatal("%s", usage);
        reqs.push_back(Request{arg, std::move(*pattern), kFieldWildcard, 0});
    }
    return reqs;
}

void warn_unmatched(const std::vector<Request>& reqs) {
    for (const Request& r : reqs)
        if (r.matches == 0) log::warn("unmatched request: \"%s\"", r.raw.c_str());
}

// -x expands $name in "-o name=value" against the entry's own settings first.
std::function<std::string(std::string_view)> expander(const Context& ctx, const ParamSpace& space, int entry) {
    if (!ctx.opt.has(kShowEval)) return {};
    ShowMode mode{false, false, true};
    return [&space, entry, mode](std::string_view text) { return space.expand(text, mode, entry); };
}

}  // namespace

std::string show_master_entries(const Context& ctx, const ParamSpace& space) {
    std::vector<Request> reqs = parse_requests(ctx.opt.args, 2, "-M option requires service_name[/type]");
    bool fold = ctx.opt.has(kFoldLine);
    std::string out;
    for (size_t i = 0; i < ctx.master.size(); ++i) {
        const MasterEntry& e = ctx.master[i];
        auto expand = expander(ctx, space, static_cast<int>(i));
        if (reqs.empty()) {
            out += format_master_entry(e, fold, expand);
            continue;
        }
        for (Request& r : reqs) {
            if (!match_service(r.pattern, e)) continue;
            ++r.matches;
            out += format_master_entry(e, fold, expand);
        }
    }
    warn_unmatched(reqs);
    return out;
}

std::string show_master_fields(const Context& ctx, const ParamSpace& space) {
    std::vector<Request> reqs =
        parse_requests(ctx.opt.args, 3, "-F option requires service_name[/type[/field]]");
    for (Request& r : reqs) {
        auto field = parse_field_name(r.pattern[2]);
        if (!field) log::fatal("invalid service attribute name: \"%s\"", r.pattern[2].c_str());
        r.field = *field;
    }
    bool fold = ctx.opt.has(kFoldLine);
    bool hide = ctx.opt.has(kHideName);
    std::string out;
    for (size_t i = 0; i < ctx.master.size(); ++i) {
        const MasterEntry& e = ctx.master[i];
        auto expand = expander(ctx, space, static_cast<int>(i));
        auto show_one = [&](int field) {
            if (ctx.opt.has(kHideValue))
                out += print_line(e.name_space() + "/" + std::string(field_name(field)), fold);
            else
                out += format_master_field(e, field, fold, hide, expand);
        };
        auto show = [&](int field) {
            if (field != kFieldWildcard) return show_one(field);
            for (int f = 0; f < kMasterMinFields; ++f) show_one(f);
        };
        if (reqs.empty()) show(kFieldWildcard);
        for (Request& r : reqs) {
            if (!match_service(r.pattern, e)) continue;
            ++r.matches;
            show(r.field);
        }
    }
    warn_unmatched(reqs);
    return out;
}

std::string show_master_params(const Context& ctx, const ParamSpace& space) {
    std::vector<Request> reqs =
        parse_requests(ctx.opt.args, 3, "-P option requires service_name[/type[/parameter]]");
    bool fold = ctx.opt.has(kFoldLine);
    ShowMode mode{false, false, ctx.opt.has(kShowEval)};
    std::string out;
    for (size_t i = 0; i < ctx.master.size(); ++i) {
        const MasterEntry& e = ctx.master[i];
        const ValueMap& local = space.local_params(i);
        if (local.empty()) continue;
        auto show = [&](const std::string& name, const std::string& raw_value) {
            if (ctx.opt.has(kHideValue)) {
                out += print_line(e.name_space() + "/" + name, fold);
                return;
            }
            std::string value = mode.eval ? space.expand(raw_value, mode, static_cast<int>(i)) : raw_value;
            if (ctx.opt.has(kHideName)) out += print_line(value, fold);
            else out += print_line(e.name_space() + "/" + name + " = " + value, fold);
        };
        if (reqs.empty()) {
            for (const auto& [name, value] : local) show(name, value);  // std::map: sorted
            continue;
        }
        for (Request& r : reqs) {
            if (!match_service(r.pattern, e)) continue;
            if (r.pattern[2] == "*") {
                for (const auto& [name, value] : local) show(name, value);
                ++r.matches;
            } else if (auto it = local.find(r.pattern[2]); it != local.end()) {
                show(it->first, it->second);
                ++r.matches;
            }
        }
    }
    warn_unmatched(reqs);
    return out;
}

}  // namespace postern::postconf
