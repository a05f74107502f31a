#include <db.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

#include "util/table/table.h"

using namespace postern;
using namespace postern::table;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/postern-table-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        (void)!std::system(cmd.c_str());
    }
};

// Reads a raw key from a .db with Berkeley DB directly, to check the on-disk layout.
bool raw_has_key(const std::string& db_path, DBTYPE type, const std::string& key, size_t size,
                 std::string* value = nullptr) {
    DB* db = nullptr;
    if (db_create(&db, nullptr, 0) != 0) return false;
    if (db->open(db, nullptr, db_path.c_str(), nullptr, type, DB_RDONLY, 0) != 0) {
        db->close(db, 0);
        return false;
    }
    DBT k{}, v{};
    k.data = const_cast<char*>(key.data());
    k.size = static_cast<u_int32_t>(size);
    bool found = db->get(db, nullptr, &k, &v, 0) == 0;
    if (found && value) value->assign(static_cast<const char*>(v.data), v.size);
    db->close(db, 0);
    return found;
}

void build(const std::string& spec, unsigned extra,
           std::initializer_list<std::pair<const char*, const char*>> entries) {
    auto t = open_table(spec, kCreate | kFoldFix | kDupWarn | extra);
    REQUIRE(t.ok());
    for (auto& [k, v] : entries) REQUIRE((*t)->update(k, v).ok());
    REQUIRE((*t)->sync().ok());
}

}  // namespace

TEST_CASE("hash table stores keys and values with a trailing NUL by default and folds keys", "[tables]") {
    TempDir dir;
    std::string name = dir.path + "/map";
    build("hash:" + name, 0, {{"Foo", "Bar Baz"}, {"x@Example.COM", "y"}});
    std::string value;
    CHECK(raw_has_key(name + ".db", DB_HASH, std::string("foo\0", 4), 4, &value));
    CHECK(value == std::string("Bar Baz\0", 8));
    CHECK(raw_has_key(name + ".db", DB_HASH, "x@example.com", 14));
    CHECK_FALSE(raw_has_key(name + ".db", DB_HASH, "foo", 3));

    auto t = open_table("hash:" + name, kReadOnly | kFoldFix);
    REQUIRE(t.ok());
    CHECK((*t)->lookup("FOO").value == "Bar Baz");
    CHECK((*t)->lookup("nope").status == LookupResult::Status::NotFound);
}

TEST_CASE("hash table -n layout stores keys without NUL and lookups still find them", "[tables]") {
    TempDir dir;
    std::string name = dir.path + "/map";
    build("hash:" + name, kTryNul0, {{"k", "v"}});
    CHECK(raw_has_key(name + ".db", DB_HASH, "k", 1));
    CHECK_FALSE(raw_has_key(name + ".db", DB_HASH, std::string("k\0", 2), 2));
    auto t = open_table("hash:" + name, kReadOnly);
    REQUIRE(t.ok());
    CHECK((*t)->lookup("k").value == "v");
    // Forcing the NUL form on a file without NULs finds nothing, as in Postfix.
    auto forced = open_table("hash:" + name, kReadOnly | kTryNul1);
    REQUIRE(forced.ok());
    CHECK_FALSE((*forced)->lookup("k").found());
}

TEST_CASE("btree table builds a DB_BTREE file that hash cannot open", "[tables]") {
    TempDir dir;
    std::string name = dir.path + "/map";
    build("btree:" + name, 0, {{"b", "2"}, {"a", "1"}});
    CHECK(raw_has_key(name + ".db", DB_BTREE, std::string("a\0", 2), 2));
    auto t = open_table("btree:" + name, kReadOnly);
    REQUIRE(t.ok());
    std::string order;
    REQUIRE((*t)->for_each([&](std::string_view k, std::string_view v) {
        order += std::string(k) + "=" + std::string(v) + ";";
        return true;
    }).ok());
    CHECK(order == "a=1;b=2;");
    auto wrong = open_table("hash:" + name, kReadOnly);
    CHECK_FALSE(wrong.ok());
}

TEST_CASE("duplicate keys keep the first value unless replace is asked for", "[tables]") {
    TempDir dir;
    std::string name = dir.path + "/map";
    {
        auto t = open_table("hash:" + name, kCreate | kFoldFix | kDupIgnore);
        REQUIRE(t.ok());
        REQUIRE((*t)->update("a", "first").ok());
        REQUIRE((*t)->update("A", "second").ok());
        REQUIRE((*t)->sync().ok());
    }
    auto r = open_table("hash:" + name, kReadOnly | kFoldFix);
    CHECK((*r)->lookup("a").value == "first");
    {
        auto t = open_table("hash:" + name, kFoldFix | kDupReplace);
        REQUIRE(t.ok());
        REQUIRE((*t)->update("a", "third").ok());
    }
    auto r2 = open_table("hash:" + name, kReadOnly | kFoldFix);
    CHECK((*r2)->lookup("a").value == "third");
    {
        auto t = open_table("hash:" + name, kFoldFix);  // no dup flag: an error
        REQUIRE(t.ok());
        Status st = (*t)->update("a", "fourth");
        CHECK_FALSE(st.ok());
        CHECK(st.error().find("duplicate entry: \"a\"") != std::string::npos);
    }
}

TEST_CASE("a build is invisible until sync and an abandoned build leaves the old table", "[tables]") {
    TempDir dir;
    std::string name = dir.path + "/map";
    build("hash:" + name, 0, {{"old", "1"}});
    auto reader = open_table("hash:" + name, kReadOnly);
    REQUIRE(reader.ok());
    {
        auto t = open_table("hash:" + name, kCreate | kDupWarn);
        REQUIRE(t.ok());
        REQUIRE((*t)->update("new", "2").ok());
        auto mid = open_table("hash:" + name, kReadOnly);
        REQUIRE(mid.ok());
        CHECK((*mid)->lookup("old").found());
        CHECK_FALSE((*mid)->lookup("new").found());
        // Destroyed without sync(): abandoned.
    }
    auto after = open_table("hash:" + name, kReadOnly);
    CHECK((*after)->lookup("old").found());
    CHECK_FALSE((*after)->lookup("new").found());
    CHECK_FALSE((*reader)->changed());
    build("hash:" + name, 0, {{"new", "2"}});
    // The reader opened before the rebuild keeps a consistent view of the old file, and
    // can tell that it should reopen.
    CHECK((*reader)->lookup("old").found());
    CHECK((*reader)->changed());
    auto fresh = open_table("hash:" + name, kReadOnly);
    CHECK((*fresh)->lookup("new").found());
    CHECK_FALSE((*fresh)->lookup("old").found());
    // No temporary files left behind.
    CHECK(access((name + ".db.postern-tmp." + std::to_string(getpid())).c_str(), F_OK) != 0);
}

TEST_CASE("remove deletes one entry and reports whether it was there", "[tables]") {
    TempDir dir;
    std::string name = dir.path + "/map";
    build("hash:" + name, 0, {{"a", "1"}, {"b", "2"}});
    auto t = open_table("hash:" + name, kLock | kFoldFix);
    REQUIRE(t.ok());
    auto r = (*t)->remove("A");
    REQUIRE(r.ok());
    CHECK(*r);
    auto again = (*t)->remove("a");
    REQUIRE(again.ok());
    CHECK_FALSE(*again);
    CHECK((*t)->lookup("b").found());
}

TEST_CASE("opening a missing or corrupt hash file gives Postfix's error", "[tables]") {
    TempDir dir;
    auto missing = open_table("hash:" + dir.path + "/none", kReadOnly);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == "open database " + dir.path + "/none.db: No such file or directory");
    std::ofstream(dir.path + "/bad.db") << "this is not a database\n";
    auto bad = open_table("hash:" + dir.path + "/bad", kReadOnly);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error() == "open database " + dir.path + "/bad.db: Invalid argument");
    auto empty_name = open_table("hash:", kReadOnly);
    CHECK_FALSE(empty_name.ok());
}

TEST_CASE("a rebuild keeps the replaced file's permissions", "[tables]") {
    TempDir dir;
    std::string name = dir.path + "/map";
    build("hash:" + name, 0, {{"a", "1"}});
    chmod((name + ".db").c_str(), 0640);
    build("hash:" + name, 0, {{"a", "2"}});
    struct stat st;
    REQUIRE(stat((name + ".db").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
}

TEST_CASE("many lookups on one open hash table do not reopen it", "[tables]") {
    TempDir dir;
    std::string name = dir.path + "/map";
    {
        auto t = open_table("hash:" + name, kCreate | kDupWarn);
        REQUIRE(t.ok());
        for (int i = 0; i < 2000; ++i)
            REQUIRE((*t)->update("key" + std::to_string(i), "value" + std::to_string(i)).ok());
        REQUIRE((*t)->sync().ok());
    }
    auto t = open_table("hash:" + name, kReadOnly);
    REQUIRE(t.ok());
    int found = 0;
    for (int i = 0; i < 2000; ++i) found += (*t)->lookup("key" + std::to_string(i)).found();
    CHECK(found == 2000);
    CHECK((*t)->lookup("key1999").value == "value1999");
}
