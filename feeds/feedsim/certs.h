// A throw-away certificate authority for the simulator's HTTPS: ca.pem (the CA the client is
// given as ca_file), server.pem + server.key (for localhost, 127.0.0.1 and ::1), ca.key.
// Private keys are written with mode 0600.
#pragma once

#include <string>

namespace iocwall::feedsim {

bool GenerateTestCa(const std::string& dir, std::string* err);

}  // namespace iocwall::feedsim
