DROP TABLE peer_invitations;
