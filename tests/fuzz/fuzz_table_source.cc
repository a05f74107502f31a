// Fuzzes the postmap/texthash source reader and the aliases(5) line parser: any bytes,
// split at a point the input chooses, must give the same logical lines as one feed, line
// numbers that never decrease, and entries or warnings naming the file and line — never a
// crash. Entries from postmap lines have a key and a value; alias entries have a value.
#include <string>
#include <vector>

#include "fuzz_helpers.h"
#include "util/table/alias_source.h"
#include "util/table/table_source.h"

using namespace postern;
using namespace postern::table;

namespace {

std::vector<LogicalLine> read_lines(std::string_view text, size_t cut, std::vector<std::string>& warnings) {
    LogicalLineReader r("/fuzz/src");
    r.feed(text.substr(0, cut));
    r.feed(text.substr(cut));
    r.finish();
    std::vector<LogicalLine> out;
    LogicalLine l;
    while (r.next(l)) out.push_back(l);
    warnings = r.take_warnings();
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    size_t cut = size ? data[0] % (size + 1) : 0;
    std::vector<std::string> w1, w2;
    auto whole = read_lines(text, text.size(), w1);
    auto split = read_lines(text, cut, w2);
    FUZZ_CHECK(whole.size() == split.size());
    FUZZ_CHECK(w1 == w2);
    int last = 0;
    for (size_t i = 0; i < whole.size(); ++i) {
        FUZZ_CHECK(whole[i].text == split[i].text);
        FUZZ_CHECK(whole[i].line >= last && whole[i].line >= 1);
        last = whole[i].line;
        for (bool utf8 : {false, true}) {
            std::vector<std::string> w;
            if (auto e = parse_postmap_line(whole[i], "/fuzz/src", utf8, w)) {
                FUZZ_CHECK(!e->key.empty() && !e->value.empty());
            } else {
                FUZZ_CHECK(!w.empty() && w.back().rfind("/fuzz/src, line ", 0) == 0);
            }
            w.clear();
            (void)parse_texthash_line(whole[i], "/fuzz/src", utf8, w);
            w.clear();
            // The name may be "" (a quoted empty name) and the value may be "" too:
            // Postfix's postalias stores "x: \\" as x with an empty value.
            (void)parse_alias_line(whole[i], "/fuzz/src", utf8, w);
            for (const std::string& m : w) FUZZ_CHECK(m.rfind("/fuzz/src, line ", 0) == 0);
            (void)fold_key(whole[i].text, utf8);
            (void)printable(whole[i].text);
        }
    }
    return 0;
}
