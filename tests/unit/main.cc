// Catch2 v2 (Debian's catch2 package) supplies main().
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
