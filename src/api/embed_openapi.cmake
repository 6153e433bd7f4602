# Writes the OpenAPI document into a C++ source file as a raw string literal (run at build time).
file(READ ${IN} content)
file(WRITE ${OUT} "// Generated from docs/openapi.yaml by src/api/embed_openapi.cmake; do not edit.\n"
                  "#include \"api/api_server.h\"\n"
                  "namespace fleettwin::api {\n"
                  "const std::string& ApiServer::openapi_yaml() {\n"
                  "  static const std::string doc = R\"openapi(${content})openapi\";\n"
                  "  return doc;\n}\n}  // namespace fleettwin::api\n")
