/// A self-signed certificate for `localhost` and 127.0.0.1 (P-256, valid until 2126) and its
/// key: an HTTPS upstream that no trusted authority vouches for.
public enum SelfSigned {
    public static let certificatePEM = """
-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUNN21B7HwYQWRNKqTAiaZCASHwcswCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjIxMjYxMVoYDzIxMjYxMDI5
MjEyNjExWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQ5VCGwKgXucLjWluxpgaKhMqy+OgPzxs7zzE9bH5R7EU863jFxp9+e
Hg2962AyeEc5OLh0B1+WiJYTGpWIX4+oo28wbTAdBgNVHQ4EFgQU8s/O/5jP9+XK
2nsjwreJM32lym0wHwYDVR0jBBgwFoAU8s/O/5jP9+XK2nsjwreJM32lym0wDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSAAwRQIgUlmQzDheFePky0ygjahcr6/SGPTQDSu4zD4sryiDyK0CIQDS
gYuBiw3KjAX1zG8vlg8Nhm1J2cCFjc6LUbAv48dJFg==
-----END CERTIFICATE-----
"""

    public static let privateKeyPEM = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMSL5IgH8CsR8YPJY
rrY/VEcz+FwcHJ4zykZsuFmqwNGhRANCAAQ5VCGwKgXucLjWluxpgaKhMqy+OgPz
xs7zzE9bH5R7EU863jFxp9+eHg2962AyeEc5OLh0B1+WiJYTGpWIX4+o
-----END PRIVATE KEY-----
"""
}
