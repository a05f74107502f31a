// Fuzz target: pipe(8)'s master.cf attributes and ${...} argument expansion take any
// text without crashing; an argument without '$' comes out unchanged, and every
// expanded vector has at least the command itself.
#include <string>
#include <vector>

#include "fuzz_helpers.h"
#include "util/mailbox/pipe_attr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::mailbox;
    std::string_view in = postern::fuzz::as_text(data, size);
    std::vector<std::string> words;
    size_t start = 0;
    for (size_t i = 0; i <= in.size(); ++i)
        if (i == in.size() || in[i] == ' ') {
            words.emplace_back(in.substr(start, i - start));
            start = i + 1;
        }
    (void)parse_pipe_attr(words);
    (void)unescape(in);
    std::vector<std::string> command{"/bin/cmd"};
    command.insert(command.end(), words.begin(), words.end());
    PipeMacros macros{{"sender", "s@example.com"}, {"nexthop", "example.com"}};
    std::vector<PipeRecipient> rcpts{{"Joe+x@Example.com", "joe@example.com"}, {"+b@x", "+b@x"}};
    auto argv = expand_pipe_argv(command, macros, rcpts, kPipeFoldUser | kPipeQuoteLocal, "+");
    if (argv) {
        FUZZ_CHECK(!argv->empty() && argv->front() == "/bin/cmd");
        if (in.find('$') == std::string_view::npos) FUZZ_CHECK(*argv == command);
    }
    return 0;
}
