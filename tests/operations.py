"""GraphQL documents for the session, account and admin operations, shared by API and e2e tests."""

USER_FIELDS = "id email fullName isActive isSuperuser isVerified createdAt updatedAt"
AUTH_PAYLOAD_FIELDS = f"accessToken refreshToken tokenType expiresIn user {{ {USER_FIELDS} }}"
SESSION_FIELDS = "id createdAt lastUsedAt expiresAt userAgent ipAddress current"

ME = f"query {{ me {{ {USER_FIELDS} }} }}"
MY_SESSIONS = f"query {{ mySessions {{ {SESSION_FIELDS} }} }}"

REFRESH_TOKEN = f"""
mutation Refresh($refreshToken: String!) {{
  refreshToken(refreshToken: $refreshToken) {{ {AUTH_PAYLOAD_FIELDS} }}
}}
"""
LOGOUT = "mutation Logout($refreshToken: String!) { logout(refreshToken: $refreshToken) }"
LOGOUT_ALL = "mutation { logoutAll }"
REVOKE_SESSION = "mutation Revoke($id: ID!) { revokeSession(id: $id) }"

UPDATE_ME = f"""
mutation UpdateMe($input: UpdateMeInput!) {{
  updateMe(input: $input) {{ {USER_FIELDS} }}
}}
"""
CHANGE_PASSWORD = """
mutation ChangePassword($input: ChangePasswordInput!) { changePassword(input: $input) }
"""
REQUEST_PASSWORD_RESET = """
mutation RequestReset($email: String!) { requestPasswordReset(email: $email) }
"""
RESET_PASSWORD = "mutation Reset($input: ResetPasswordInput!) { resetPassword(input: $input) }"
REQUEST_EMAIL_VERIFICATION = "mutation { requestEmailVerification }"
VERIFY_EMAIL = f"""
mutation Verify($token: String!) {{
  verifyEmail(token: $token) {{ {USER_FIELDS} }}
}}
"""

CREATE_USER = f"""
mutation CreateUser($input: CreateUserInput!) {{
  createUser(input: $input) {{ {USER_FIELDS} }}
}}
"""
UPDATE_USER = f"""
mutation UpdateUser($id: ID!, $input: UpdateUserInput!) {{
  updateUser(id: $id, input: $input) {{ {USER_FIELDS} }}
}}
"""
DELETE_USER = "mutation DeleteUser($id: ID!) { deleteUser(id: $id) }"
