# Files a message marked by the lab's spam stand-in header into Junk (created on demand).
require ["fileinto", "mailbox"];
if header :is "X-Lab-Spam" "yes" {
  fileinto :create "Junk";
  stop;
}
